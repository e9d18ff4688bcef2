package services

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aima/engines"
	"aima/errs"
	"aima/events"
	"aima/models"
	"aima/runtime/fakeruntime"
	"aima/state"
)

// Unit tests of admission, idle release, sleep/wake and swaps. No Docker:
// the records are written directly and the "engine" is an httptest server
// that answers vLLM's sleep endpoints and logs the calls in order.

type fakeEngine struct {
	srv       *httptest.Server
	port      int
	calls     *callLog
	name      string
	gate      chan struct{} // when set, a wake waits for it
	sleepGate chan struct{} // when set, a sleep waits for it
	sleeping  chan struct{} // when set, closed as a sleep call arrives
	wakes     atomic.Int32  // wake calls that arrived (before the gate)
}

type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	l.calls = append(l.calls, s)
	l.mu.Unlock()
}

func (l *callLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func (l *callLog) count(s string) int {
	n := 0
	for _, c := range l.list() {
		if c == s {
			n++
		}
	}
	return n
}

func newFakeEngine(t *testing.T, name string, log *callLog) *fakeEngine {
	t.Helper()
	f := &fakeEngine{calls: log, name: name}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sleep":
			if f.sleeping != nil {
				close(f.sleeping)
				f.sleeping = nil
			}
			if f.sleepGate != nil {
				<-f.sleepGate
			}
			log.add(name + " sleep")
		case "/wake_up":
			f.wakes.Add(1)
			if f.gate != nil {
				<-f.gate
			}
			log.add(name + " wake")
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(f.srv.Close)
	_, p, _ := net.SplitHostPort(f.srv.Listener.Addr().String())
	f.port, _ = strconv.Atoi(p)
	return f
}

func newServingManager(t *testing.T) *Manager {
	t.Helper()
	store := state.NewMemory()
	cat, err := engines.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	fr := fakeruntime.New()
	m := NewManager(store, fr, events.NewBus(), cat, models.NewRegistry(store), Options{BindHost: "127.0.0.1"})
	m.observe = func(from Status, s Service) { observeTransition(t, from, s) }
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
	if s.Status == StatusRunning {
		m.noteTransition(s)
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

// flowState reads a service's serving figures under the gate's lock.
func flowState(m *Manager, id string) (waiting, inFlight int, draining bool) {
	m.serving.mu.Lock()
	defer m.serving.mu.Unlock()
	if f, ok := m.serving.entries[id]; ok {
		return f.Waiting, f.InFlight, f.draining
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

func TestAdmitCountsRequests(t *testing.T) {
	t.Parallel()
	m := newServingManager(t)
	s := put(t, m, Service{ID: "svc-a", Status: StatusRunning, Port: 1})
	a, err := m.Admit(t.Context(), s.ID, AdmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := m.Get(t.Context(), s.ID)
	if got.Traffic == nil || got.Traffic.InFlight != 1 || got.Traffic.Requests != 1 {
		t.Fatalf("traffic while in flight: %+v", got.Traffic)
	}
	a.Done(RequestFigures{TokensIn: 7, TokensOut: 3, TTFT: 12 * time.Millisecond})
	a.Done(RequestFigures{TokensIn: 100}) // a second Done changes nothing
	got, _ = m.Get(t.Context(), s.ID)
	tr := got.Traffic
	if tr.InFlight != 0 || tr.TokensIn != 7 || tr.TokensOut != 3 || tr.LastTTFTMs != 12 || tr.AvgTTFTMs != 12 || tr.LastRequestAt == nil {
		t.Fatalf("traffic after: %+v", tr)
	}
}

func TestAdmitRefusesStoppedServiceNotOnDemand(t *testing.T) {
	t.Parallel()
	m := newServingManager(t)
	put(t, m, Service{ID: "svc-a", Status: StatusStopped})
	_, err := m.Admit(t.Context(), "svc-a", AdmitOptions{})
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestIdleReleaseSleepsOnlyWhenNothingInFlight(t *testing.T) {
	t.Parallel()
	m := newServingManager(t)
	log := &callLog{}
	e := newFakeEngine(t, "a", log)
	idle := 300 * time.Millisecond
	put(t, m, Service{ID: "svc-a", Status: StatusRunning, Port: e.port, SleepMode: true, IdleTimeout: idle.String()})
	a, err := m.Admit(t.Context(), "svc-a", AdmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * idle) // a long request (an open stream) holds the service awake
	if st := status(t, m, "svc-a"); st != StatusRunning {
		t.Fatalf("released during a request: %s", st)
	}
	ended := time.Now()
	a.Done(RequestFigures{})
	waitStatus(t, m, "svc-a", StatusSleeping, 5*idle)
	if took := time.Since(ended); took < idle || took > idle+time.Second {
		t.Errorf("released %s after the last request, want %s (±1s)", took, idle)
	}
	if got := log.list(); len(got) != 1 || got[0] != "a sleep" {
		t.Errorf("engine calls %v", got)
	}
}

func TestWaitersShareOneWake(t *testing.T) {
	t.Parallel()
	m := newServingManager(t)
	log := &callLog{}
	e := newFakeEngine(t, "a", log)
	e.gate = make(chan struct{})
	put(t, m, Service{ID: "svc-a", Status: StatusSleeping, Port: e.port, SleepMode: true})
	var wg sync.WaitGroup
	var ok atomic.Int32
	var waits atomic.Int32
	var other sync.Map // anything else a waiter was told it waits for
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := m.Admit(t.Context(), "svc-a", AdmitOptions{OnWait: func(_ Service, what string) {
				if what == "waking" {
					waits.Add(1)
				} else {
					other.Store(what, true)
				}
			}})
			if err != nil {
				t.Error(err)
				return
			}
			ok.Add(1)
			a.Done(RequestFigures{})
		}()
	}
	// All five wait at once while the one wake is held at the engine.
	until(t, "five waiters and a wake call", func() bool {
		w, _, _ := flowState(m, "svc-a")
		return w == 5 && e.wakes.Load() >= 1
	})
	close(e.gate)
	wg.Wait()
	if ok.Load() != 5 || log.count("a wake") != 1 || e.wakes.Load() != 1 {
		t.Fatalf("%d admitted, engine calls %v (%d wake calls arrived); want 5 and one wake", ok.Load(), log.list(), e.wakes.Load())
	}
	// The waiter whose wake reached the engine was told so; a waiter that
	// read the status only once the engine was up was admitted silently.
	if n := waits.Load(); n < 1 || n > 5 {
		t.Errorf("%d waiters were told \"waking\", want 1 to 5", n)
	}
	other.Range(func(what, _ any) bool {
		t.Errorf("a waiter was told it waits for %q, want only \"waking\"", what)
		return true
	})
	if w, in, _ := flowState(m, "svc-a"); w != 0 || in != 0 {
		t.Errorf("after the requests: %d waiting, %d in flight", w, in)
	}
}

func TestQueueBound(t *testing.T) {
	t.Parallel()
	m := newServingManager(t)
	e := newFakeEngine(t, "a", &callLog{})
	e.gate = make(chan struct{})
	put(t, m, Service{ID: "svc-a", Status: StatusSleeping, Port: e.port, SleepMode: true})
	first := make(chan error, 1)
	go func() {
		a, err := m.Admit(t.Context(), "svc-a", AdmitOptions{MaxQueue: 1})
		if err == nil {
			a.Done(RequestFigures{})
		}
		first <- err
	}()
	until(t, "the first waiter", func() bool { w, _, _ := flowState(m, "svc-a"); return w == 1 })
	_, err := m.Admit(t.Context(), "svc-a", AdmitOptions{MaxQueue: 1})
	var nr *NotReadyError
	if !errors.As(err, &nr) || !errs.Is(err, errs.Unavailable) {
		t.Errorf("second waiter: %v, want a not-ready refusal", err)
	}
	close(e.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// TestSwapWaitsForInFlightThenSleepsThenWakes: a request for the sleeping
// member of a swap group waits for the active member's request, then the
// active member sleeps and only then the requested one wakes.
func TestSwapWaitsForInFlightThenSleepsThenWakes(t *testing.T) {
	t.Parallel()
	m := newServingManager(t)
	log := &callLog{}
	ea, eb := newFakeEngine(t, "a", log), newFakeEngine(t, "b", log)
	put(t, m, Service{ID: "svc-a", Status: StatusRunning, Port: ea.port, SleepMode: true, SwapGroup: "g"})
	put(t, m, Service{ID: "svc-b", Status: StatusSleeping, Port: eb.port, SleepMode: true, SwapGroup: "g"})
	inA, err := m.Admit(t.Context(), "svc-a", AdmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gotB := make(chan error, 1)
	go func() {
		b, err := m.Admit(t.Context(), "svc-b", AdmitOptions{})
		if err == nil {
			b.Done(RequestFigures{})
		}
		gotB <- err
	}()
	// The swap has begun draining a, whose request is still in flight: b
	// waits, a still runs and no engine was called.
	until(t, "the swap to drain a", func() bool { _, _, d := flowState(m, "svc-a"); return d })
	select {
	case err := <-gotB:
		t.Fatalf("b admitted while a still had a request in flight: %v", err)
	default:
	}
	if w, _, _ := flowState(m, "svc-b"); w != 1 {
		t.Fatalf("%d requests wait for b, want 1", w)
	}
	if st := status(t, m, "svc-a"); st != StatusRunning {
		t.Fatalf("a is %s while its request is in flight", st)
	}
	if got := log.list(); len(got) != 0 {
		t.Fatalf("engine calls %v while a's request is in flight, want none", got)
	}
	inA.Done(RequestFigures{})
	if err := <-gotB; err != nil {
		t.Fatal(err)
	}
	if a, b := status(t, m, "svc-a"), status(t, m, "svc-b"); a != StatusSleeping || b != StatusRunning {
		t.Fatalf("after the swap a=%s b=%s", a, b)
	}
	if got := log.list(); len(got) != 2 || got[0] != "a sleep" || got[1] != "b wake" {
		t.Fatalf("engine calls %v, want [a sleep, b wake]", got)
	}
	// And back again.
	a, err := m.Admit(t.Context(), "svc-a", AdmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Done(RequestFigures{})
	if a, b := status(t, m, "svc-a"), status(t, m, "svc-b"); a != StatusRunning || b != StatusSleeping {
		t.Fatalf("after swapping back a=%s b=%s", a, b)
	}
}

// TestSwapDuringIdleRelease: a swap that starts while the active member is
// being released for idleness, with a request waiting for that member,
// completes: the member went down on its own, so the swap does not wait
// for the request that waits for it.
func TestSwapDuringIdleRelease(t *testing.T) {
	t.Parallel()
	m := newServingManager(t)
	log := &callLog{}
	ea, eb := newFakeEngine(t, "a", log), newFakeEngine(t, "b", log)
	ea.sleepGate, ea.sleeping = make(chan struct{}), make(chan struct{})
	sleepCalled := ea.sleeping
	put(t, m, Service{ID: "svc-a", Status: StatusRunning, Port: ea.port, SleepMode: true, SwapGroup: "g", IdleTimeout: "100ms"})
	put(t, m, Service{ID: "svc-b", Status: StatusSleeping, Port: eb.port, SleepMode: true, SwapGroup: "g"})
	<-sleepCalled // a's idle release is under way
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	results := make(chan error, 2)
	admit := func(id string) {
		a, err := m.Admit(ctx, id, AdmitOptions{})
		if err == nil {
			a.Done(RequestFigures{})
		}
		results <- err
	}
	go admit("svc-a")
	until(t, "a request waiting for a", func() bool { w, _, _ := flowState(m, "svc-a"); return w == 1 })
	go admit("svc-b")
	// b's swap has reached a, which a request waits for, and says so.
	until(t, "b's swap to wait for a", func() bool {
		for _, ev := range m.bus.History("svc-b", 0) {
			if ev.Type == events.TypeMessage && strings.Contains(ev.Message, "waiting for svc-a") {
				return true
			}
		}
		return false
	})
	close(ea.sleepGate)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("%v (engine calls %v)", err, log.list())
		}
	}
}

// TestSleepingServiceStopsAndFails: a sleeping service can be stopped, and
// its container's death makes it failed like a running one's.
func TestSleepingServiceStopsAndFails(t *testing.T) {
	t.Parallel()
	m := newServingManager(t)
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
