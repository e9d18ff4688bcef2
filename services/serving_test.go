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
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := m.Admit(t.Context(), "svc-a", AdmitOptions{OnWait: func(_ Service, what string) {
				if what == "waking" {
					waits.Add(1)
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
	time.Sleep(100 * time.Millisecond)
	close(e.gate)
	wg.Wait()
	if ok.Load() != 5 || log.count("a wake") != 1 {
		t.Fatalf("%d admitted, engine calls %v; want 5 and one wake", ok.Load(), log.list())
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
	for m.gate.figures("svc-a") == nil || m.gate.figures("svc-a").Waiting == 0 {
		time.Sleep(time.Millisecond)
	}
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
	select {
	case err := <-gotB:
		t.Fatalf("b admitted while a still had a request in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if st := status(t, m, "svc-a"); st != StatusRunning {
		t.Fatalf("a is %s while its request is in flight", st)
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
	for m.gate.waiting("svc-a") == 0 {
		time.Sleep(time.Millisecond)
	}
	go admit("svc-b")
	time.Sleep(50 * time.Millisecond)
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
	m.containerEnded(t.Context(), "svc-b", "c-b", "container exited with code 137", &code)
	b, _ := m.Get(t.Context(), "svc-b")
	if b.Status != StatusFailed || !strings.Contains(b.Reason, "while sleeping") || b.Failure == "" {
		t.Fatalf("sleeping service whose container died: %s (%s), failure %q", b.Status, b.Reason, b.Failure)
	}
}
