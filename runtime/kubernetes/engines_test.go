package kubernetes_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/internal/testenv/kube"
	"aima/services"
)

// The tests of a service that reaches running on kwok: a fake node's Pods
// get loopback addresses (its PodCIDR), the daemon reaches engines at the
// Pod's IP (endpoint pod_ip), and the test serves a stand-in engine there
// (HTTP 200 on every path) for every running Pod, as the engine in the Pod
// would answer.

// podNets numbers the loopback /24 each engine node gets.
var podNets atomic.Int32

// podNet is the n-th loopback /24 (127.77.1.0/24, ...).
func podNet(n int) string { return fmt.Sprintf("127.%d.%d.0/24", 77+n/250, 1+n%250) }

// engineNode adds a fake GPU node whose Pods get loopback addresses.
func (e env) engineNode(t testing.TB, suffix string, gpus int) string {
	t.Helper()
	name := e.ns + "-" + suffix
	e.c.AddGPUNode(t, kube.GPUNode{Name: name, GPUs: gpus, Product: "NVIDIA-H100-80GB-HBM3", MemMiB: 81559,
		PodCIDR: podNet(int(podNets.Add(1)))})
	return name
}

// engineConfig is a daemon config with runtime kubernetes on the test's
// namespace, engines reached at their Pod's IP, quick probes and a short
// first restart delay; extra is appended.
func (e env) engineConfig(t testing.TB, gpus, extra string) string {
	t.Helper()
	return testenv.SimConfig(t, testenv.SimConfigOptions{
		Image: "aima-enginesim:test", GPUs: gpus,
		Extra: fmt.Sprintf("runtime: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n  endpoint: pod_ip\n"+
			"  tolerations: [{key: %s, operator: Equal, value: fake, effect: NoSchedule}]\n"+
			"health_interval: 50ms\nliveness_interval: 200ms\nunhealthy_grace: 1h\nrestart_backoff: 2s\n%s",
			e.c.Kubeconfig, e.ns, kube.FakeNodeAnnotation, extra),
	})
}

// serveEngines serves the stand-in engine at the IP of every running Pod
// of the namespace on a loopback address, until the test ends.
func (e env) serveEngines(t testing.TB) { e.serveEnginesEvery(t, 20*time.Millisecond) }

// serveEnginesEvery is serveEngines looking for new Pods every period.
func (e env) serveEnginesEvery(t testing.TB, period time.Duration) {
	e.serveEnginesWith(t, period, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
}

// serveEnginesWith is serveEnginesEvery with ok as the stand-in engine.
func (e env) serveEnginesWith(t testing.TB, period time.Duration, ok http.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	open := map[string]*http.Server{} // by Pod IP
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			pods, err := e.c.Client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
			if err == nil {
				want := map[string]bool{}
				for _, p := range pods.Items {
					if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && strings.HasPrefix(p.Status.PodIP, "127.") {
						want[p.Status.PodIP] = true
					}
				}
				for ip, srv := range open {
					if !want[ip] {
						_ = srv.Close()
						delete(open, ip)
					}
				}
				for ip := range want {
					if open[ip] != nil {
						continue
					}
					ln, err := net.Listen("tcp", net.JoinHostPort(ip, "8000"))
					if err != nil {
						continue // tried again at the next tick
					}
					srv := &http.Server{Handler: ok, ReadHeaderTimeout: 5 * time.Second}
					open[ip] = srv
					wg.Add(1)
					go func() {
						defer wg.Done()
						_ = srv.Serve(ln)
					}()
				}
			}
			select {
			case <-ctx.Done():
				for _, srv := range open {
					_ = srv.Close()
				}
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// runningService creates a service with restart policy on-failure, starts
// it and waits until it runs.
func runningService(t testing.TB, ctx context.Context, d *daemontest.Daemon) services.Service {
	t.Helper()
	m := d.Env.Services
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
	_, evs, err := d.Env.Services.Events(ctx, id, 0)
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
// after run, running.
func runningAgain(t *testing.T, ctx context.Context, d *daemontest.Daemon, id string, run int) services.Service {
	t.Helper()
	for {
		s, err := d.Env.Services.Get(ctx, id)
		if err == nil && s.Run > run && s.Status == services.StatusRunning {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no restart to running after run %d: %+v, %v\n%s", run, s, err, d.Logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
