package serving

import (
	"context"
	"strings"
	"testing"
	"time"

	"aima/events"
	"aima/internal/testenv/fakeengine"
	"aima/services"
)

// TestSwapWaitsForInFlightThenSleepsThenWakes: a request for the sleeping

// member of a swap group waits for the active member's request, then the

// active member sleeps and only then the requested one wakes.

func TestSwapWaitsForInFlightThenSleepsThenWakes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	log := &fakeengine.CallLog{}
	ea, eb := fakeengine.New(t, "a", log), fakeengine.New(t, "b", log)
	h.put(services.Service{ID: "svc-a", Status: services.StatusRunning, Port: ea.Port, SleepMode: true, SwapGroup: "g"})
	h.put(services.Service{ID: "svc-b", Status: services.StatusSleeping, Port: eb.Port, SleepMode: true, SwapGroup: "g"})
	sc, m := h.start()
	inA, err := sc.Admit(t.Context(), "svc-a", AdmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gotB := make(chan error, 1)
	go func() {
		b, err := sc.Admit(t.Context(), "svc-b", AdmitOptions{})
		if err == nil {
			b.Done(RequestFigures{})
		}
		gotB <- err
	}()
	// The swap has begun draining a, whose request is still in flight: b
	// waits, a still runs and no engine was called.
	until(t, "the swap to drain a", func() bool { _, _, d := requestCounts(sc, "svc-a"); return d })
	select {
	case err := <-gotB:
		t.Fatalf("b admitted while a still had a request in flight: %v", err)
	default:
	}
	if w, _, _ := requestCounts(sc, "svc-b"); w != 1 {
		t.Fatalf("%d requests wait for b, want 1", w)
	}
	if st := status(t, m, "svc-a"); st != services.StatusRunning {
		t.Fatalf("a is %s while its request is in flight", st)
	}
	if got := log.List(); len(got) != 0 {
		t.Fatalf("engine calls %v while a's request is in flight, want none", got)
	}
	inA.Done(RequestFigures{})
	if err := <-gotB; err != nil {
		t.Fatal(err)
	}
	if a, b := status(t, m, "svc-a"), status(t, m, "svc-b"); a != services.StatusSleeping || b != services.StatusRunning {
		t.Fatalf("after the swap a=%s b=%s", a, b)
	}
	if got := log.List(); len(got) != 2 || got[0] != "a sleep" || got[1] != "b wake" {
		t.Fatalf("engine calls %v, want [a sleep, b wake]", got)
	}
	// And back again.
	a, err := sc.Admit(t.Context(), "svc-a", AdmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Done(RequestFigures{})
	if a, b := status(t, m, "svc-a"), status(t, m, "svc-b"); a != services.StatusRunning || b != services.StatusSleeping {
		t.Fatalf("after swapping back a=%s b=%s", a, b)
	}
}

// TestSwapDuringIdleRelease: a swap that starts while the active member is

// being released for idleness, with a request waiting for that member,

// completes: the member went down on its own, so the swap does not wait

// for the request that waits for it.

func TestSwapDuringIdleRelease(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	log := &fakeengine.CallLog{}
	ea, eb := fakeengine.New(t, "a", log), fakeengine.New(t, "b", log)
	ea.SleepGate, ea.Sleeping = make(chan struct{}), make(chan struct{})
	sleepCalled := ea.Sleeping
	h.put(services.Service{ID: "svc-a", Status: services.StatusRunning, Port: ea.Port, SleepMode: true, SwapGroup: "g", IdleTimeout: "100ms"})
	h.put(services.Service{ID: "svc-b", Status: services.StatusSleeping, Port: eb.Port, SleepMode: true, SwapGroup: "g"})
	sc, m := h.start()
	<-sleepCalled // a's idle release is under way
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	results := make(chan error, 2)
	admit := func(id string) {
		a, err := sc.Admit(ctx, id, AdmitOptions{})
		if err == nil {
			a.Done(RequestFigures{})
		}
		results <- err
	}
	go admit("svc-a")
	until(t, "a request waiting for a", func() bool { w, _, _ := requestCounts(sc, "svc-a"); return w == 1 })
	go admit("svc-b")
	// b's swap has reached a, which a request waits for, and says so.
	until(t, "b's swap to wait for a", func() bool {
		for _, ev := range m.Bus().History("svc-b", 0) {
			if ev.Type == events.TypeMessage && strings.Contains(ev.Message, "waiting for svc-a") {
				return true
			}
		}
		return false
	})
	close(ea.SleepGate)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("%v (engine calls %v)", err, log.List())
		}
	}
}
