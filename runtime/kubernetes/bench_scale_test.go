package kubernetes_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/client"
	"aima/internal/testenv"
	"aima/internal/testenv/kube"
	"aima/services"
	"aima/tools"
)

// scaleCounts are the numbers of running services BenchmarkServicesAtRest
// compares. AIMA_BENCH_KUBE_SERVICES (comma-separated) overrides them.
var scaleCounts = []int{100, 1000}

// scaleNodes is the number of fake nodes the services spread over.
const scaleNodes = 100

// BenchmarkServicesAtRest runs an `aima start` daemon (a subprocess, for
// its own RSS) with runtime kubernetes on 100 kwok nodes, grows the number
// of running services, and at each count measures at rest: the daemon's
// API server requests per minute (counted by a proxy the daemon's
// kubeconfig points at), its RSS, and `service list` over HTTP against the
// API server's own list of the same Pods (the baseline).
func BenchmarkServicesAtRest(b *testing.B) {
	counts := scaleCounts
	if v := os.Getenv("AIMA_BENCH_KUBE_SERVICES"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("AIMA_BENCH_KUBE_SERVICES: %v", err)
			}
			counts = append(counts, n)
		}
	}
	e := newEnv(b)
	addNodes(b, e, scaleNodes, 16)
	e.serveEnginesEvery(b, time.Second)
	proxy := e.c.CountRequests(b)
	kc := proxy.Kubeconfig
	cfg := testenv.SimConfig(b, testenv.SimConfigOptions{
		Image: "aima-enginesim:test", GPUs: "1", PortSpan: counts[len(counts)-1] + 20,
		Extra: fmt.Sprintf("runtime: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n  endpoint: pod_ip\n"+
			"  tolerations: [{key: %s, operator: Equal, value: fake, effect: NoSchedule}]\n",
			kc, e.ns, kube.FakeNodeAnnotation),
	})
	d := testenv.StartDaemon(b, testenv.DaemonOptions{Config: cfg, HealthTimeout: time.Minute})
	cl := client.New(d.URL())
	ctx := ctxFor(b, 60*time.Minute)
	have := 0
	for _, n := range counts {
		grown := time.Now()
		startServices(b, ctx, cl, n-have)
		have = n
		b.Logf("%d services running (grown in %s)", n, time.Since(grown).Round(time.Second))
		// At rest: the starts' requests are over; count for a window.
		time.Sleep(5 * time.Second)
		const window = 30 * time.Second
		before, gm0, cpu0 := proxy.Count(), goMetrics(b, d.URL()), testenv.ReadProcCPU(b, d.PID())
		time.Sleep(window)
		perMin := float64(proxy.Count()-before) * float64(time.Minute) / float64(window)
		cpu := testenv.ReadProcCPU(b, d.PID()) - cpu0
		mem := testenv.ReadProcMemory(b, d.PID())
		gm := goMetrics(b, d.URL())
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			var list, base []time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				raw, err := cl.Call(ctx, "service_list", tools.ServiceListInput{}, nil)
				list = append(list, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				var out struct {
					Items []services.Service `json:"items"`
				}
				if err := client.Decode(raw, &out); err != nil || len(out.Items) != n {
					b.Fatalf("service_list: %d items, %v; want %d", len(out.Items), err, n)
				}
				t0 = time.Now()
				pods, err := e.c.Client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
				base = append(base, time.Since(t0))
				if err != nil || len(pods.Items) != n {
					b.Fatalf("list pods: %d, %v; want %d", len(pods.Items), err, n)
				}
			}
			b.ReportMetric(0, "ns/op")
			ml, mb := testenv.Median(list), testenv.Median(base)
			b.ReportMetric(testenv.Ms(ml), "ms-service-list")
			b.ReportMetric(testenv.Ms(mb), "ms-apiserver-list-pods")
			b.ReportMetric(float64(ml)/float64(mb), "ratio-list-vs-apiserver")
			b.ReportMetric(testenv.MiB(mem.RSS), "MiB-rss")
			b.ReportMetric(testenv.MiB(mem.File), "MiB-rss-file")
			b.ReportMetric(gm["go_memstats_heap_inuse_bytes"]/(1<<20), "MiB-heap-inuse")
			b.ReportMetric(gm["go_memstats_stack_inuse_bytes"]/(1<<20), "MiB-stacks")
			// The collector's goal: the heap size at which the next
			// collection ends (about twice the live heap by default).
			b.ReportMetric(gm["go_memstats_next_gc_bytes"]/(1<<20), "MiB-gc-goal")
			// Heap the runtime freed but still holds (not yet returned to
			// the system): part of the RSS after the growth's peak.
			b.ReportMetric((gm["go_memstats_heap_idle_bytes"]-gm["go_memstats_heap_released_bytes"])/(1<<20), "MiB-heap-retained")
			b.ReportMetric(gm["go_goroutines"], "goroutines")
			// What the daemon allocates at rest (health probes, watches),
			// which the collector's headroom must hold between collections.
			b.ReportMetric((gm["go_memstats_alloc_bytes_total"]-gm0["go_memstats_alloc_bytes_total"])/(1<<20)/window.Seconds(), "MiB/s-alloc-at-rest")
			b.ReportMetric((gm["go_gc_duration_seconds_count"]-gm0["go_gc_duration_seconds_count"])*60/window.Seconds(), "gc/min-at-rest")
			b.ReportMetric(perMin, "api-requests/min")
			// The daemon's CPU at rest, in per cent of one core.
			b.ReportMetric(100*cpu.Seconds()/window.Seconds(), "cpu-%-at-rest")
		})
	}
}

// addNodes adds n fake GPU nodes with loopback Pod networks, ten at a time.
func addNodes(b *testing.B, e env, n, gpus int) {
	b.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e.engineNode(b, "n"+strconv.Itoa(i), gpus)
		}()
	}
	wg.Wait()
}

// startServices creates and starts n services (in parallel, as many
// clients would) and waits until all run.
func startServices(b *testing.B, ctx context.Context, cl *client.Client, n int) {
	b.Helper()
	var wg sync.WaitGroup
	var failed atomic.Int32
	var firstErr atomic.Value
	sem := make(chan struct{}, 20)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := func() error {
				raw, err := cl.Call(ctx, "service_create", tools.ServiceCreateInput{ModelID: "org/name", EngineType: "vllm"}, nil)
				if err != nil {
					return err
				}
				var s services.Service
				if err := client.Decode(raw, &s); err != nil {
					return err
				}
				raw, err = cl.Call(ctx, "service_start", tools.ServiceStartInput{ServiceID: s.ID, Wait: true, TimeoutSeconds: 1200}, nil)
				if err != nil {
					return err
				}
				var out tools.StartOutput
				if err := client.Decode(raw, &out); err != nil {
					return err
				}
				if out.Service.Status != services.StatusRunning {
					return fmt.Errorf("service %s %s: %s", s.ID, out.Service.Status, out.Service.Reason)
				}
				return nil
			}()
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d starts failed; first: %v", f, n, firstErr.Load())
	}
}

// goMetrics reads the Go runtime's gauges from the daemon's /metrics.
func goMetrics(b *testing.B, base string) map[string]float64 {
	b.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[0], "go_") {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[f[0]] = v
		}
	}
	return out
}
