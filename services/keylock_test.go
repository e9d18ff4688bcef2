package services

import (
	"context"
	"errors"
	"testing"
	"time"

	"aima/errs"
)

// TestKeyLocksGiveUpWithTheContext: a waiter for a held lock returns when
// its context ends, and a key nobody holds or waits for leaves no entry.
func TestKeyLocksGiveUpWithTheContext(t *testing.T) {
	t.Parallel()
	k := newKeyLocks()
	unlock, err := k.lock(t.Context(), "g")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	why := errors.New("client went away")
	got := make(chan error, 1)
	go func() {
		u, err := k.lock(ctx, "g")
		if err == nil {
			u()
		}
		got <- err
	}()
	cancel(why)
	if err := <-got; !errors.Is(err, why) {
		t.Fatalf("waiter: %v, want the context's cause", err)
	}
	if _, err := k.lock(ctx, "other"); !errors.Is(err, why) {
		t.Fatalf("a free lock taken with an ended context should still be refused: %v", err)
	}
	unlock()
	unlock() // a second call does nothing
	if n := k.len(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
	u2, err := k.lock(t.Context(), "g")
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

// TestLifecycleCallsGiveUpWithTheirContext: a stop that waits for the
// service's lock, held by a wake whose engine call hangs, returns when its
// caller's context ends (canceled), instead of holding the caller until
// the engine answers; the wake then completes.
func TestLifecycleCallsGiveUpWithTheirContext(t *testing.T) {
	t.Parallel()
	m := newServingManager(t)
	log := &callLog{}
	ea := newFakeEngine(t, "a", log)
	ea.gate = make(chan struct{})
	put(t, m, Service{ID: "svc-a", Status: StatusSleeping, Port: ea.port, SleepMode: true})
	woke := make(chan error, 1)
	go func() {
		_, err := m.Wake(t.Context(), "svc-a")
		woke <- err
	}()
	for m.locks.interest("svc-a") == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() {
		_, err := m.Stop(ctx, "svc-a")
		stopped <- err
	}()
	for m.locks.interest("svc-a") < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-stopped; !errs.Is(err, errs.Canceled) {
		t.Fatalf("stop waiting for the lock: %v, want canceled", err)
	}
	close(ea.gate)
	if err := <-woke; err != nil {
		t.Fatal(err)
	}
	if st := status(t, m, "svc-a"); st != StatusRunning {
		t.Fatalf("after the wake: %s", st)
	}
	if n := m.locks.len(); n != 0 {
		t.Errorf("%d lock entries left", n)
	}
}
