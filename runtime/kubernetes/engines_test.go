package kubernetes_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/internal/testenv/kube"
	"aima/services"
)

// The tests of a service that reaches running on kwok: see
// kube.ServeEngines (a fake node's Pods get loopback addresses, the daemon
// reaches engines at the Pod's IP, the test serves a stand-in engine
// there).

// podNetBase is this package's loopback range for fake nodes' Pods
// (kube.EnginePodNet).
const podNetBase = 77

// engineNode adds a fake GPU node whose Pods get loopback addresses, in
// the test's pool (engineConfig's daemons place only there).
func (e env) engineNode(t testing.TB, suffix string, gpus int) string {
	t.Helper()
	name := e.ns + "-" + suffix
	e.c.AddGPUNode(t, kube.GPUNode{Name: name, GPUs: gpus, Product: "NVIDIA-H100-80GB-HBM3", MemMiB: 81559,
		PodCIDR: kube.EnginePodNet(podNetBase), Labels: e.pool()})
	return name
}

// engineConfig is a daemon config with runtime kubernetes on the test's
// namespace and pool of nodes, engines reached at their Pod's IP, quick probes and a short
// first restart delay; extra is appended.
func (e env) engineConfig(t testing.TB, gpus, extra string) string {
	t.Helper()
	return testenv.SimConfig(t, testenv.SimConfigOptions{
		Image: "aima-enginesim:test", GPUs: gpus,
		Extra: fmt.Sprintf("runtime: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n  endpoint: pod_ip\n"+
			"  node_selector: {%s: %s}\n"+
			"  tolerations: [{key: %s, operator: Equal, value: fake, effect: NoSchedule}]\n"+
			"health_interval: 50ms\nliveness_interval: 200ms\nunhealthy_grace: 1h\nrestart_backoff: 2s\n%s",
			e.c.Kubeconfig, e.ns, poolLabel, e.ns, kube.FakeNodeAnnotation, extra),
	})
}

// serveEngines serves the stand-in engine at the IP of every running Pod
// of the namespace, until the test ends.
func (e env) serveEngines(t testing.TB) { e.serveEnginesEvery(t, 20*time.Millisecond) }

// serveEnginesEvery is serveEngines looking for new Pods every period.
func (e env) serveEnginesEvery(t testing.TB, period time.Duration) {
	t.Helper()
	e.c.ServeEngines(t, e.ns, period, nil)
}

// serveEnginesWith is serveEnginesEvery with ok as the stand-in engine.
func (e env) serveEnginesWith(t testing.TB, period time.Duration, ok http.Handler) {
	t.Helper()
	e.c.ServeEngines(t, e.ns, period, ok)
}

// runningService creates a service with restart policy on-failure, starts
// it and waits until it runs.
func runningService(t testing.TB, ctx context.Context, d *daemontest.Daemon) services.Service {
	t.Helper()
	m := d.Domain.Services
	s, err := m.Create(ctx, services.CreateSpec{ModelID: "org/name", EngineType: "vllm", RestartPolicy: services.RestartOnFailure})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartWith(ctx, s.ID, services.StartOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	s, err = m.Wait(ctx, s.ID, services.StatusRunning, time.Minute)
	if err != nil {
		t.Fatalf("wait for running: %v\n%s", err, d.Logs.String())
	}
	return s
}

// failedEvent returns the service's status events to failed.
func failedEvents(t *testing.T, ctx context.Context, d *daemontest.Daemon, id string) []string {
	t.Helper()
	_, evs, err := d.Domain.Services.Events(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.Status == string(services.StatusFailed) && ev.Failure != "" {
			out = append(out, ev.Failure+": "+ev.Message)
		}
	}
	return out
}

// runningAgain waits until the restart policy ran the service again: a run
// after run, running. When it does not, the failure shows the namespace's
// Pods as the API server has them.
func (e env) runningAgain(t *testing.T, ctx context.Context, d *daemontest.Daemon, id string, run int) services.Service {
	t.Helper()
	for {
		s, err := d.Domain.Services.Get(ctx, id)
		if err == nil && s.Run > run && s.Status == services.StatusRunning {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no restart to running after run %d: %+v, %v\n%s\npods:\n%s", run, s, err, d.Logs.String(), e.podsText())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// podsText describes the namespace's Pods and their events, for a
// failure's message.
func (e env) podsText() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	pods, err := e.c.Client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "%s node=%q phase=%s gates=%v deleting=%v ip=%s\n", p.Name, p.Spec.NodeName, p.Status.Phase, p.Spec.SchedulingGates, p.DeletionTimestamp != nil, p.Status.PodIP)
		for _, c := range p.Status.Conditions {
			fmt.Fprintf(&b, "  condition %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	if evs, err := e.c.Client.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, ev := range evs.Items {
			fmt.Fprintf(&b, "event %s %s: %s %s\n", ev.InvolvedObject.Name, ev.LastTimestamp.Format(time.RFC3339), ev.Reason, ev.Message)
		}
	}
	if nodes, err := e.c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		for _, n := range nodes.Items {
			if !strings.HasPrefix(n.Name, e.ns) {
				continue
			}
			fmt.Fprintf(&b, "node %s unschedulable=%v taints=%v\n", n.Name, n.Spec.Unschedulable, n.Spec.Taints)
			for _, c := range n.Status.Conditions {
				fmt.Fprintf(&b, "  condition %s=%s %s\n", c.Type, c.Status, c.LastHeartbeatTime.Format(time.RFC3339))
			}
		}
	}
	return b.String()
}
