package web_test

import (
	"context"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/runtime"
	"aima/runtime/fakeruntime"
)

// clusterRuntime is the fake runtime answering doctor's cluster check as
// the Kubernetes runtime does (runtime.Diagnoser), so the Health page's
// cluster rows can be driven without a cluster.
type clusterRuntime struct {
	*fakeruntime.Runtime
	report runtime.ClusterReport
}

func (c clusterRuntime) Diagnose(context.Context) runtime.ClusterReport { return c.report }

// On Kubernetes the Health page names the runtime the cluster's API server
// and shows what doctor reports of it: server and version, namespace, how
// engines are reached and the permissions aima lacks.
func TestHealthPageShowsTheCluster(t *testing.T) {
	chromiumPath(t)
	rt := clusterRuntime{Runtime: newFake(t), report: runtime.ClusterReport{Runtime: "kubernetes", Server: "https://10.0.0.1:6443",
		Reachable: true, Version: "v1.37.2", Namespace: "inference", Endpoint: "pod_ip", Missing: []string{"list nodes"}}}
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Image: fakeImage})
	d := daemontest.Start(t, cfg, daemontest.Options{Runtime: rt})
	b := newBrowser(t, 1280, 800)
	b.navigate(d.URL + "/ui/#/health")
	b.waitFor("the runtime named as the cluster's API server", `!!document.getElementById('health-docker') && document.getElementById('health-docker').innerText.includes('Kubernetes API server')`, 10*time.Second)
	b.waitFor("the cluster's figures", `!!document.getElementById('health-cluster') && document.getElementById('health-cluster').innerText === 'https://10.0.0.1:6443 (v1.37.2), namespace inference, engines reached by Pod IP'`, 5*time.Second)
	b.waitFor("the missing permission", `document.getElementById('health-cluster-missing').innerText === 'list nodes'`, 5*time.Second)
	b.noConsoleErrors("the health page")
}
