package serving

import (
	"context"
	"testing"
	"time"

	"aima/engines"
	"aima/events"
	"aima/models"
	"aima/runtime/fakeruntime"
	"aima/services"
	"aima/state"
)

// Unit tests of admission, idle release and swaps. No Docker: the records
// are written to the store before the manager reads it, and the "engine"
// is an httptest server that answers vLLM's sleep endpoints and logs the
// calls in order.

// harness is a store with service records, then a manager and its
// serving layer over it.
type harness struct {
	t     *testing.T
	store state.Store
	recs  *state.Collection[services.Service]
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	store := state.NewMemory()
	return &harness{t: t, store: store, recs: state.NewCollection[services.Service](store, "services/", "service")}
}

// put writes a service record as a start would have left it. Call it
// before start: the manager's record cache reads the store once.
func (h *harness) put(s services.Service) services.Service {
	h.t.Helper()
	s.EngineType = "vllm"
	if s.Name == "" {
		s.Name = s.ID
	}
	s.CreatedAt = time.Now()
	if err := h.recs.Create(context.Background(), s.ID, s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// start builds the manager and its serving layer over the records put,
// and arms the idle clock of those running, as the daemon does.
func (h *harness) start() (*Scheduler, *services.Manager) {
	h.t.Helper()
	cat, err := engines.NewCatalog(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	fr := fakeruntime.New()
	m := services.NewManager(h.store, fr, events.NewBus(), cat, models.NewRegistry(h.store), services.Options{BindHost: "127.0.0.1"})
	m.OnTransition(func(tr services.Transition) {
		if !tr.Deleted && !services.CanTransition(tr.From, tr.Service.Status) {
			h.t.Errorf("service %s: %s → %s is not in the transition table", tr.Service.ID, tr.From, tr.Service.Status)
		}
	})
	sc := New(m, Options{})
	sc.ArmRunning(h.t.Context())
	h.t.Cleanup(func() {
		sc.Close()
		m.Close()
		fr.Close()
	})
	return sc, m
}

func status(t *testing.T, m *services.Manager, id string) services.Status {
	t.Helper()
	s, err := m.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s.Status
}

func waitStatus(t *testing.T, m *services.Manager, id string, want services.Status, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for time.Since(began) < within {
		if status(t, m, id) == want {
			return time.Since(began)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s is %s after %s, want %s", id, status(t, m, id), within, want)
	return 0
}

// requestCounts reads a service's serving state under the scheduler's lock.
func requestCounts(sc *Scheduler, id string) (waiting, inFlight int, held bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if e, ok := sc.entries[id]; ok {
		return e.Waiting, e.InFlight, e.held()
	}
	return 0, 0, false
}

// until polls cond, which reads one of the counters the code keeps, until
// it holds. The bound only ends a test that would hang; no pass or fail
// depends on how long it took.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
