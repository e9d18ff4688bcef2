package keylock

import (
	"context"
	"errors"
	"testing"
)

// TestLocksGiveUpWithTheContext: a waiter for a held lock returns when
// its context ends, and a key nobody holds or waits for leaves no entry.
func TestLocksGiveUpWithTheContext(t *testing.T) {
	t.Parallel()
	k := New()
	unlock, err := k.Lock(t.Context(), "g")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	why := errors.New("client went away")
	got := make(chan error, 1)
	go func() {
		u, err := k.Lock(ctx, "g")
		if err == nil {
			u()
		}
		got <- err
	}()
	cancel(why)
	if err := <-got; !errors.Is(err, why) {
		t.Fatalf("waiter: %v, want the context's cause", err)
	}
	if _, err := k.Lock(ctx, "other"); !errors.Is(err, why) {
		t.Fatalf("a free lock taken with an ended context should still be refused: %v", err)
	}
	unlock()
	unlock() // a second call does nothing
	if n := k.Len(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
	u2, err := k.Lock(t.Context(), "g")
	if err != nil {
		t.Fatal(err)
	}
	u2()
}
