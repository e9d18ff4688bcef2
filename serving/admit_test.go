package serving

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aima/errs"
	"aima/internal/testenv/fakeengine"
	"aima/services"
)

func TestAdmitCountsRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.put(services.Service{ID: "svc-a", Status: services.StatusRunning, Port: 1})
	sc, m := h.start()
	a, err := sc.Admit(t.Context(), s.ID, AdmitOptions{})
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
	h := newHarness(t)
	h.put(services.Service{ID: "svc-a", Status: services.StatusStopped})
	sc, _ := h.start()
	_, err := sc.Admit(t.Context(), "svc-a", AdmitOptions{})
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestIdleReleaseSleepsOnlyWhenNothingInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	log := &fakeengine.CallLog{}
	e := fakeengine.New(t, "a", log)
	idle := 300 * time.Millisecond
	h.put(services.Service{ID: "svc-a", Status: services.StatusRunning, Port: e.Port, SleepMode: true, IdleTimeout: idle.String()})
	sc, m := h.start()
	a, err := sc.Admit(t.Context(), "svc-a", AdmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * idle) // a long request (an open stream) holds the service awake
	if st := status(t, m, "svc-a"); st != services.StatusRunning {
		t.Fatalf("released during a request: %s", st)
	}
	ended := time.Now()
	a.Done(RequestFigures{})
	waitStatus(t, m, "svc-a", services.StatusSleeping, 5*idle)
	if took := time.Since(ended); took < idle || took > idle+time.Second {
		t.Errorf("released %s after the last request, want %s (±1s)", took, idle)
	}
	if got := log.List(); len(got) != 1 || got[0] != "a sleep" {
		t.Errorf("engine calls %v", got)
	}
}

func TestWaitersShareOneWake(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	log := &fakeengine.CallLog{}
	e := fakeengine.New(t, "a", log)
	e.Gate = make(chan struct{})
	h.put(services.Service{ID: "svc-a", Status: services.StatusSleeping, Port: e.Port, SleepMode: true})
	sc, _ := h.start()
	var wg sync.WaitGroup
	var ok atomic.Int32
	var waits atomic.Int32
	var other sync.Map // anything else a waiter was told it waits for
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := sc.Admit(t.Context(), "svc-a", AdmitOptions{OnWait: func(_ services.Service, what string) {
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
		w, _, _ := requestCounts(sc, "svc-a")
		return w == 5 && e.Wakes.Load() >= 1
	})
	close(e.Gate)
	wg.Wait()
	if ok.Load() != 5 || log.Count("a wake") != 1 || e.Wakes.Load() != 1 {
		t.Fatalf("%d admitted, engine calls %v (%d wake calls arrived); want 5 and one wake", ok.Load(), log.List(), e.Wakes.Load())
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
	if w, in, _ := requestCounts(sc, "svc-a"); w != 0 || in != 0 {
		t.Errorf("after the requests: %d waiting, %d in flight", w, in)
	}
}

func TestQueueBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	e := fakeengine.New(t, "a", &fakeengine.CallLog{})
	e.Gate = make(chan struct{})
	h.put(services.Service{ID: "svc-a", Status: services.StatusSleeping, Port: e.Port, SleepMode: true})
	sc, _ := h.start()
	first := make(chan error, 1)
	go func() {
		a, err := sc.Admit(t.Context(), "svc-a", AdmitOptions{MaxQueue: 1})
		if err == nil {
			a.Done(RequestFigures{})
		}
		first <- err
	}()
	until(t, "the first waiter", func() bool { w, _, _ := requestCounts(sc, "svc-a"); return w == 1 })
	_, err := sc.Admit(t.Context(), "svc-a", AdmitOptions{MaxQueue: 1})
	var nr *NotReadyError
	if !errors.As(err, &nr) || !errs.Is(err, errs.Unavailable) {
		t.Errorf("second waiter: %v, want a not-ready refusal", err)
	}
	close(e.Gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// TestHoldsAreCounted: two holds of one service (here a GPU drain's and an
// eviction's claim would be two callers) each end with their own release:
// the first release does not reopen the service the second still holds.
func TestHoldsAreCounted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.put(services.Service{ID: "svc-a", Status: services.StatusRunning, Port: 1})
	sc, _ := h.start()
	first, left := sc.Quiesce(t.Context(), "svc-a", services.QuiesceOptions{})
	if left != 0 {
		t.Fatalf("%d in flight, want none", left)
	}
	if _, ok := sc.ClaimIdle("svc-a"); ok {
		t.Fatal("an eviction claimed a held service")
	}
	second := sc.hold("svc-a", false)
	first()
	first() // a second call does nothing
	admitted := make(chan error, 1)
	go func() {
		a, err := sc.Admit(t.Context(), "svc-a", AdmitOptions{})
		if err == nil {
			a.Done(RequestFigures{})
		}
		admitted <- err
	}()
	until(t, "the request to wait", func() bool { w, _, held := requestCounts(sc, "svc-a"); return w == 1 && held })
	second()
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
	if _, idle := sc.Idle("svc-a"); !idle {
		t.Error("not idle after every hold ended and the request was done")
	}
}

// TestDeleteForgetsFigures: a delete reaches the serving layer through the
// transition hook, which drops the service's figures and ready record.
func TestDeleteForgetsFigures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.put(services.Service{ID: "svc-a", Status: services.StatusRunning, Port: 1})
	sc, m := h.start()
	a, err := sc.Admit(t.Context(), "svc-a", AdmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Done(RequestFigures{TokensOut: 3})
	if tr := sc.Figures("svc-a"); tr == nil || tr.Requests != 1 {
		t.Fatalf("figures before the delete: %+v", tr)
	}
	if _, err := m.Delete(t.Context(), "svc-a"); err != nil {
		t.Fatal(err)
	}
	if tr := sc.Figures("svc-a"); tr != nil {
		t.Errorf("figures after the delete: %+v", tr)
	}
	if _, ok := sc.readyNow("svc-a"); ok {
		t.Error("the deleted service is still in the ready cache")
	}
}
