package e2e

import (
	"context"
	"fmt"
	"time"

	"testing"

	"aima/errs"
	"aima/events"
	"aima/internal/testenv"
	"aima/runtime"
	"aima/runtime/docker"
	"aima/tools"
)

// BenchmarkScheduleRefusal: service_start (wait=true) of a service whose
// model is too large for either of two 80 GiB GPUs (fake nvidia-smi), until
// the call returns the conflict: the start is refused in its schedule
// phase, before any pull or container. Baseline, in the same run: creating
// and removing one container of the engine image through the Docker API,
// the least a start that was not refused would go on to pay.
func BenchmarkScheduleRefusal(b *testing.B) {
	p := newInprocGPUs(b, testenv.TwoGPUs())
	huge := p.addModel(b, bigModel(b))
	s := p.createService(b, tools.ServiceCreateInput{ModelID: huge})
	rt, err := docker.New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Close() })
	image := testenv.EngineSimImage(b)
	var refusal, inDaemon, create []time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		err := p.try(b, "service_start", tools.ServiceStartInput{ServiceID: s.ID, Wait: true, TimeoutSeconds: 60}, nil, nil)
		refusal = append(refusal, time.Since(t0))
		if !errs.Is(err, errs.Conflict) {
			b.Fatalf("start of an unschedulable service: %v", err)
		}
		var hist tools.EventsOutput
		p.call(b, "service_events", tools.ServiceEventsInput{ServiceID: s.ID}, &hist)
		var began, failed time.Time
		for _, h := range hist.Items {
			if h.Type == events.TypeStatus && h.Run == i+1 && h.Status == "creating" {
				began = h.Time
			}
			if h.Type == events.TypeStatus && h.Run == i+1 && h.Status == "failed" {
				failed = h.Time
			}
		}
		inDaemon = append(inDaemon, failed.Sub(began))

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t1 := time.Now()
		id, err := rt.CreateContainer(ctx, runtime.ContainerSpec{Name: fmt.Sprintf("aima-bench-create-%d-%d", time.Now().UnixNano(), i), Image: image,
			Labels: map[string]string{"aima.bench": "schedule-refusal"}})
		if err == nil {
			err = rt.RemoveContainer(ctx, id, runtime.RemoveOptions{Force: true})
		}
		create = append(create, time.Since(t1))
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	reportLatency(b, "start-to-refused", refusal)
	b.ReportMetric(testenv.Ms(testenv.Median(inDaemon)), "ms-creating-to-failed")
	b.ReportMetric(testenv.Ms(testenv.Median(create)), "ms-docker-create-rm")
	b.ReportMetric(float64(testenv.Median(refusal))/float64(testenv.Median(create)), "ratio-vs-create")
	b.Logf("creating-to-failed (in the daemon) samples: %v\ndocker create+rm samples: %v", inDaemon, create)
}
