package faults

import (
	"aima/internal/testenv"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
)

// fltCall is one lifecycle call of the concurrency cases.
type fltCall struct{ op, id string }

// fire runs the calls all at once over HTTP and returns a histogram of
// "op → HTTP status". A 5xx or a transport error fails the test.
func (d *fltDaemon) fire(t *testing.T, calls []fltCall) map[string]int {
	t.Helper()
	var mu sync.Mutex
	hist := map[string]int{}
	var bad []string
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			var code int
			var body []byte
			var err error
			switch c.op {
			case "status":
				code, body, err = d.Get("/api/service/status?service_id=" + c.id)
			default:
				code, body, err = d.Post("/api/service/"+c.op, map[string]any{"service_id": c.id})
			}
			mu.Lock()
			defer mu.Unlock()
			hist[fmt.Sprintf("%s→%d", c.op, code)]++
			if err != nil || code >= 500 || (code != 200 && code != 409) {
				bad = append(bad, fmt.Sprintf("%s %s: %d %v %s", c.op, c.id, code, err, body))
			}
		}()
	}
	close(gate)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d calls answered badly:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	return hist
}

// fltMixedCalls returns n calls on id, each a start, a stop or a status.
func fltMixedCalls(r *rand.Rand, id string, n int) []fltCall {
	ops := []string{"start", "stop", "status"}
	calls := make([]fltCall, n)
	for i := range calls {
		calls[i] = fltCall{op: ops[r.IntN(len(ops))], id: id}
	}
	return calls
}

// assertConsistent waits for each service to settle and checks it against
// Docker: at most one container, the recorded one, running exactly when the
// status is running.
func (d *fltDaemon) assertConsistent(t *testing.T, ids []string) map[string]int {
	t.Helper()
	final := map[string]int{}
	for _, id := range ids {
		s := d.settled(t, id)
		final[s.Status]++
		if s.Status == "failed" {
			t.Errorf("concurrent calls left %v: a start or stop raced into a failure\n%s", s, d.eventsText(id))
		}
		cs := fltContainers(t, id)
		if len(cs) > 1 {
			t.Errorf("service %s has %d containers, want at most 1: %+v (record: %v)", id, len(cs), cs, s)
			continue
		}
		// A start cancelled by a stop before its create phase leaves no
		// container: then the service must be stopped.
		if len(cs) == 0 {
			if s.Status == "running" {
				t.Errorf("service %s is running without a container", id)
			}
			continue
		}
		fltAssertOneContainer(t, s)
	}
	return final
}

// Case 6: 50 concurrent lifecycle calls (starts, stops and statuses mixed)
// on one service, and 5 each on 10 services: one container per service,
// final states consistent with Docker, no record lost.
func TestFaultConcurrentLifecycle(t *testing.T) {
	t.Parallel() // its own daemon, store and containers: it runs beside the other long cases
	e := fltSetup(t)
	d := e.d
	total := func() int {
		return testenv.DecodeJSON[testenv.List[fltSvc]](t, d.MustCLI(t, "service", "list", "-o", "json").Stdout).Total
	}
	t.Run("one-service", func(t *testing.T) {
		fltEach(t, func(t *testing.T, rep int) {
			id := e.create(t, nil)
			before := total()
			r := rand.New(rand.NewPCG(uint64(rep), 1))
			// The first call is a start so the service surely gets a container.
			calls := append([]fltCall{{op: "start", id: id}}, fltMixedCalls(r, id, 49)...)
			hist := d.fire(t, calls)
			final := d.assertConsistent(t, []string{id})
			if n := total(); n != before {
				t.Errorf("service list total %d after the calls, was %d", n, before)
			}
			t.Logf("calls: %v; final: %v", fltSortedHist(hist), final)
			d.MustCLI(t, "service", "stop", id)
		})
	})
	t.Run("ten-services", func(t *testing.T) {
		fltEach(t, func(t *testing.T, rep int) {
			var ids []string
			var calls []fltCall
			r := rand.New(rand.NewPCG(uint64(rep), 2))
			for i := 0; i < 10; i++ {
				id := e.create(t, nil)
				ids = append(ids, id)
				calls = append(calls, fltCall{op: "start", id: id})
				calls = append(calls, fltMixedCalls(r, id, 4)...)
			}
			before := total()
			r.Shuffle(len(calls), func(i, j int) { calls[i], calls[j] = calls[j], calls[i] })
			hist := d.fire(t, calls)
			final := d.assertConsistent(t, ids)
			if n := total(); n != before {
				t.Errorf("service list total %d after the calls, was %d", n, before)
			}
			t.Logf("calls: %v; final: %v", fltSortedHist(hist), final)
			for _, id := range ids {
				d.MustCLI(t, "service", "stop", id)
			}
		})
	})
}

func fltSortedHist(h map[string]int) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s×%d ", k, h[k])
	}
	return strings.TrimSpace(b.String())
}
