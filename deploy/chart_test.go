// Package deploy holds what runs aima in a cluster: the Helm chart
// (helm/aima, with the store's CRD in helm/aima/crds). Its test renders the
// chart with the Helm SDK and has the API server of the test cluster
// accept every object (server-side dry run).
package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"aima/config"
	"aima/internal/testenv/kube"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kube.StopShared()
	os.Exit(code)
}

// render renders the chart for a release in ns with vals.
func render(t *testing.T, ns string, vals map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(filepath.Join("helm", "aima"))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := util.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: "r", Namespace: ns, IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Render(chrt, rv)
}

// objects splits rendered templates into objects.
func objects(t *testing.T, out map[string]string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for name, text := range out {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(text, "\n---") {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			if len(m) > 0 {
				objs = append(objs, &unstructured.Unstructured{Object: m})
			}
		}
	}
	return objs
}

func TestChartRendersAndTheAPIServerTakesIt(t *testing.T) {
	c := kube.Shared(t)
	c.InstallCRDs(t) // the chart's crds/
	ns := c.Namespace(t)
	if _, err := render(t, ns, nil); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("rendered without a token: %v", err)
	}
	out, err := render(t, ns, map[string]any{"token": map[string]any{"value": "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, out)
	kinds := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		kinds[o.GetKind()] = o
	}
	for _, k := range []string{"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret", "Deployment", "Service"} {
		if kinds[k] == nil {
			t.Errorf("no %s rendered", k)
		}
	}
	// The config the replicas read is a valid aima config: the API
	// server's store, leader election on, in the release's namespace.
	raw, _, _ := unstructured.NestedString(kinds["ConfigMap"].Object, "data", "aima.yaml")
	cfg := config.Default()
	if err := config.Parse([]byte(raw), &cfg); err != nil {
		t.Fatalf("rendered config: %v\n%s", err, raw)
	}
	if cfg.Store != config.StoreKubernetes || cfg.Runtime != config.RuntimeKubernetes || !cfg.Cluster.LeaderElection.Enabled ||
		cfg.Kubernetes.Namespace != ns || !cfg.Kubernetes.InCluster {
		t.Errorf("rendered config: %+v", cfg)
	}
	d := kinds["Deployment"]
	if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != "2" {
		t.Errorf("replicas %v, want 2", n)
	}
	ctr, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	sc, _, _ := unstructured.NestedBool(ctr[0].(map[string]any), "securityContext", "readOnlyRootFilesystem")
	if !sc {
		t.Error("the container's root filesystem is not read-only")
	}

	// The API server takes every object (server-side apply, dry run).
	dc, err := dynamic.NewForConfig(c.Rest)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(c.Rest)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, o := range objs {
		m, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			t.Fatalf("%s: %v", o.GetKind(), err)
		}
		_, err = dc.Resource(m.Resource).Namespace(ns).Apply(ctx, o.GetName(), o,
			metav1.ApplyOptions{FieldManager: "aima-chart-test", DryRun: []string{metav1.DryRunAll}, Force: true})
		if err != nil {
			t.Errorf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}
