package services

import (
	"context"
	"testing"
	"time"

	"aima/errs"
	"aima/internal/testenv/fakeengine"
)

// TestLifecycleCallsGiveUpWithTheirContext: a stop that waits for the
// service's lock, held by a wake whose engine call hangs, returns when its
// caller's context ends (canceled), instead of holding the caller until
// the engine answers; the wake then completes.
func TestLifecycleCallsGiveUpWithTheirContext(t *testing.T) {
	t.Parallel()
	m := newSleepManager(t)
	log := &fakeengine.CallLog{}
	ea := fakeengine.New(t, "a", log)
	ea.Gate = make(chan struct{})
	put(t, m, Service{ID: "svc-a", Status: StatusSleeping, Port: ea.Port, SleepMode: true})
	woke := make(chan error, 1)
	go func() {
		_, err := m.Wake(t.Context(), "svc-a")
		woke <- err
	}()
	for m.locks.Interest("svc-a") == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() {
		_, err := m.Stop(ctx, "svc-a")
		stopped <- err
	}()
	for m.locks.Interest("svc-a") < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-stopped; !errs.Is(err, errs.Canceled) {
		t.Fatalf("stop waiting for the lock: %v, want canceled", err)
	}
	close(ea.Gate)
	if err := <-woke; err != nil {
		t.Fatal(err)
	}
	if st := status(t, m, "svc-a"); st != StatusRunning {
		t.Fatalf("after the wake: %s", st)
	}
	if n := m.locks.Len(); n != 0 {
		t.Errorf("%d lock entries left", n)
	}
}
