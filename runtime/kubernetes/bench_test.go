package kubernetes_test

// Benchmarks of the Kubernetes runtime on the test control plane with kwok
// nodes (see docs/performance.md). They report medians with
// b.ReportMetric; ns/op is suppressed (an iteration is a whole start).

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/events"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/runtime"
	"aima/services"
	"aima/state"
)

// BenchmarkPodEndToFailed: a running service's Pod terminates (the
// kubelet's status write: exit code 1); from the arrival of the watch
// event to aima's failed status event. The benchmark watches aima's Pods
// with a runtime of its own (the same informer the daemon's runtime runs,
// on the same API server): its die event's arrival is the baseline moment
// and the write → arrival time the baseline figure.
//
// Iterations alternate between the two ends a kubelet writes: with the
// engine's last lines as the terminated state's message (aima's Pods ask
// for it, FallbackToLogsOnError: the reason is in the event, "with
// message") and without (a reason no rule knows, or a kubelet that wrote
// none: aima reads pods/log first, "log read").
func BenchmarkPodEndToFailed(b *testing.B) {
	e := newEnv(b)
	e.engineNode(b, "a", 8)
	e.serveEngines(b)
	d := daemontest.Start(b, e.engineConfig(b, "1", ""), daemontest.Options{})
	ctx := ctxFor(b, 10*time.Minute)
	watcher := e.runtime(b, "bench")
	dies, _ := watcher.Events(ctx, runtime.EventOptions{Labels: map[string]string{runtime.LabelManaged: "true"}})
	m := d.Domain.Services
	s, err := m.Create(ctx, services.CreateSpec{ModelID: "org/name", EngineType: "vllm"})
	if err != nil {
		b.Fatal(err)
	}
	floor, err := state.OpenBolt(filepath.Join(b.TempDir(), "floor.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer floor.Close()
	rec := make([]byte, 2048) // about a failed record's size
	var toEvent, toFailed, toFailedLog, podLog, storeWrite []time.Duration
	for i := 0; i < b.N; i++ {
		withMessage := i%2 == 0
		if _, err := m.Start(ctx, s.ID, time.Minute); err != nil {
			b.Fatal(err)
		}
		run, err := m.Wait(ctx, s.ID, services.StatusRunning, time.Minute)
		if err != nil {
			b.Fatalf("wait for running: %v\n%s", err, d.Logs.String())
		}
		from := m.Bus().LastSeq(s.ID)
		pod, err := e.c.Client.CoreV1().Pods(e.ns).Get(ctx, run.ContainerID, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		now := metav1.Now()
		pod.Status.Phase = corev1.PodFailed
		pod.Status.ContainerStatuses[0].Ready = false
		term := &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", StartedAt: now, FinishedAt: now}
		if withMessage {
			term.Message = engineLastLines
		}
		pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: term}
		written := time.Now()
		if _, err := e.c.Client.CoreV1().Pods(e.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		var arrived time.Time
		for arrived.IsZero() {
			select {
			case ev := <-dies:
				if ev.Action == runtime.ActionDie && ev.ContainerID == run.ContainerID {
					arrived = ev.Time
				}
			case <-ctx.Done():
				b.Fatal("no die event")
			}
		}
		failed := waitStatusEvent(b, ctx, m, s.ID, from, services.StatusFailed)
		// What reading the ended engine's last lines (the failure's
		// reason) costs: one pods/log request, API server and kubelet.
		t0 := time.Now()
		if _, err := e.c.Client.CoreV1().Pods(e.ns).GetLogs(run.ContainerID, &corev1.PodLogOptions{TailLines: new(int64(200))}).DoRaw(ctx); err != nil {
			b.Fatal(err)
		}
		podLog = append(podLog, time.Since(t0))
		// The floor: one fsynced record write on this disk, as the
		// failed record's.
		t0 = time.Now()
		if _, err := floor.Put(ctx, "services/bench", rec, state.AnyRev); err != nil {
			b.Fatal(err)
		}
		storeWrite = append(storeWrite, time.Since(t0))
		toEvent = append(toEvent, arrived.Sub(written))
		if withMessage {
			toFailed = append(toFailed, failed.Sub(arrived))
		} else {
			toFailedLog = append(toFailedLog, failed.Sub(arrived))
		}
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	medEvent, medFailed := testenv.Median(toEvent), testenv.Median(toFailed)
	b.ReportMetric(testenv.Ms(medEvent), "ms-write-to-event")
	b.ReportMetric(testenv.Ms(medFailed), "ms-event-to-failed")
	b.ReportMetric(testenv.Ms(slices.Max(toFailed)), "ms-event-to-failed-max")
	if medEvent > 0 {
		b.ReportMetric(float64(medFailed)/float64(medEvent), "ratio-failed-vs-event")
	}
	if len(toFailedLog) > 0 {
		b.ReportMetric(testenv.Ms(testenv.Median(toFailedLog)), "ms-event-to-failed-log-read")
	}
	b.ReportMetric(testenv.Ms(testenv.Median(podLog)), "ms-pod-log")
	b.ReportMetric(testenv.Ms(testenv.Median(storeWrite)), "ms-store-write")
	b.Logf("write → event %v; event → failed: with message %v, log read %v; pods/log %v; store write %v", toEvent, toFailed, toFailedLog, podLog, storeWrite)
}

// engineLastLines is what a kubelet puts in the terminated state of a vLLM
// engine that ran out of GPU memory (FallbackToLogsOnError: its last
// lines).
const engineLastLines = `(EngineCore_DP0 pid=1) ERROR 12-07 10:00:00 [core.py:708] EngineCore failed to start.
(EngineCore_DP0 pid=1) ERROR 12-07 10:00:00 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has a total capacity of 79.19 GiB of which 212.81 MiB is free.
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
`

// waitStatusEvent returns the time of the service's first status event to
// want after sequence from.
func waitStatusEvent(tb testing.TB, ctx context.Context, m *services.Manager, id string, from uint64, want services.Status) time.Time {
	tb.Helper()
	sub := m.Bus().Subscribe(id, from)
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			tb.Fatalf("no %s event: %v", want, err)
		}
		if ev.Type == events.TypeStatus && ev.Status == string(want) {
			return ev.Time
		}
	}
}
