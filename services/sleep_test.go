package services

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"aima/engines"
	"aima/errs"
	"aima/events"
	"aima/internal/testenv/fakeengine"
	"aima/models"
	"aima/runtime/fakeruntime"
	"aima/state"
)

// Unit tests of sleep and wake as lifecycle operations. No Docker: the
// records are written directly and the "engine" is an httptest server that
// answers vLLM's sleep endpoints and logs the calls in order. Admission,
// idle release and swaps are the serving layer's (package serving).

func newSleepManager(t *testing.T) *Manager {
	t.Helper()
	store := state.NewMemory()
	cat, err := engines.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	fr := fakeruntime.New()
	m := NewManager(store, fr, events.NewBus(), cat, models.NewRegistry(store), Options{BindHost: "127.0.0.1"})
	m.OnTransition(func(tr Transition) { observeTransition(t, tr) })
	t.Cleanup(func() {
		m.Close()
		fr.Close()
	})
	return m
}

// put writes a service record as a start would have left it.
func put(t *testing.T, m *Manager, s Service) Service {
	t.Helper()
	s.EngineType = "vllm"
	if s.Name == "" {
		s.Name = s.ID
	}
	s.CreatedAt = time.Now()
	if err := m.col.Create(context.Background(), s.ID, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func status(t *testing.T, m *Manager, id string) Status {
	t.Helper()
	s, err := m.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s.Status
}

func waitStatus(t *testing.T, m *Manager, id string, want Status, within time.Duration) time.Duration {
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

// TestSleepQuiescesFirst: Sleep asks the serving layer to hold requests
// off and waits for those in flight before the engine is put to sleep;
// with requests still in flight when its caller gives up, it refuses
// (unavailable) without calling the engine, and lets requests in again.
func TestSleepQuiescesFirst(t *testing.T) {
	t.Parallel()
	m := newSleepManager(t)
	fs := newFakeServing()
	m.Attach(fs)
	log := &fakeengine.CallLog{}
	e := fakeengine.New(t, "a", log)
	put(t, m, Service{ID: "svc-a", Status: StatusRunning, Port: e.Port, SleepMode: true})
	fs.setInFlight("svc-a", 1)
	_, err := m.Sleep(t.Context(), "svc-a")
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "1 requests in flight") {
		t.Fatalf("sleep with a request in flight: %v, want unavailable", err)
	}
	if got := log.List(); len(got) != 0 || fs.holds("svc-a") != 0 {
		t.Fatalf("after the refusal: engine calls %v, %d holds left", got, fs.holds("svc-a"))
	}
	fs.setInFlight("svc-a", 0)
	s, err := m.Sleep(t.Context(), "svc-a")
	if err != nil || s.Status != StatusSleeping {
		t.Fatalf("sleep: %s, %v", s.Status, err)
	}
	if got := log.List(); len(got) != 1 || got[0] != "a sleep" || fs.holds("svc-a") != 0 || fs.quiesced("svc-a") != 2 {
		t.Fatalf("engine calls %v, %d holds left, %d quiesces; want one sleep after two quiesces", got, fs.holds("svc-a"), fs.quiesced("svc-a"))
	}
}

// TestSleepingServiceStopsAndFails: a sleeping service can be stopped, and
// its container's death makes it failed like a running one's.
func TestSleepingServiceStopsAndFails(t *testing.T) {
	t.Parallel()
	m := newSleepManager(t)
	put(t, m, Service{ID: "svc-a", Status: StatusSleeping, SleepMode: true, ContainerID: "c-a"})
	put(t, m, Service{ID: "svc-b", Status: StatusSleeping, SleepMode: true, ContainerID: "c-b"})
	res, err := m.Stop(t.Context(), "svc-a")
	if err != nil || res.Service.Status != StatusStopped {
		t.Fatalf("stop of a sleeping service: %+v, %v", res.Service, err)
	}
	code := 137
	m.containerEnded(t.Context(), "svc-b", "c-b", "container exited with code 137", &code, "", "")
	b, _ := m.Get(t.Context(), "svc-b")
	if b.Status != StatusFailed || !strings.Contains(b.Reason, "while sleeping") || b.Failure == "" {
		t.Fatalf("sleeping service whose container died: %s (%s), failure %q", b.Status, b.Reason, b.Failure)
	}
}

// TestTransitionHookPanicIsContained: a transition hook that panics is
// recovered; the change is stored and later hooks are still told.
func TestTransitionHookPanicIsContained(t *testing.T) {
	t.Parallel()
	m := newSleepManager(t)
	e := fakeengine.New(t, "a", &fakeengine.CallLog{})
	put(t, m, Service{ID: "svc-a", Status: StatusRunning, Port: e.Port, SleepMode: true})
	m.OnTransition(func(Transition) { panic("a bug in a hook") })
	var told atomic.Int32
	m.OnTransition(func(tr Transition) {
		if tr.Service.ID == "svc-a" && tr.From == StatusRunning && tr.Service.Status == StatusSleeping {
			told.Add(1)
		}
	})
	s, err := m.Sleep(t.Context(), "svc-a")
	if err != nil || s.Status != StatusSleeping || status(t, m, "svc-a") != StatusSleeping {
		t.Fatalf("sleep: %s, %v", s.Status, err)
	}
	if told.Load() != 1 {
		t.Errorf("the hook after the panicking one was told %d times, want 1", told.Load())
	}
}
