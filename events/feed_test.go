package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"aima/events"
)

// The feed yields every service's events published after Follow, each
// service's in Seq order, and nothing from before.
func TestFeedFollowsEveryServiceLiveOnly(t *testing.T) {
	t.Parallel()
	bus := events.NewBus()
	bus.Publish(events.Event{ServiceID: "old", Type: events.TypeStatus, Status: "created"})
	f := bus.Follow()
	const perService = 50
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c"} {
		wg.Go(func() {
			for i := range perService {
				bus.Publish(eventFor(id, i))
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	last := map[string]uint64{}
	for range 3 * perService {
		ev, err := f.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ServiceID == "old" {
			t.Fatalf("feed replayed an event published before Follow: %+v", ev)
		}
		if ev.Seq != last[ev.ServiceID]+1 {
			t.Fatalf("service %s: seq %d after %d", ev.ServiceID, ev.Seq, last[ev.ServiceID])
		}
		last[ev.ServiceID] = ev.Seq
	}
	short, cancel2 := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel2()
	if ev, err := f.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next at the head = %+v, %v; want it to wait", ev, err)
	}
}

// A reader that falls behind the window never blocks a publisher: it gets
// ErrFeedGap once, then continues from the oldest event kept.
func TestFeedGapWhenFarBehind(t *testing.T) {
	t.Parallel()
	bus := events.NewBus(events.WithFeedLimit(10))
	f := bus.Follow()
	for i := range 100 {
		bus.Publish(events.Event{ServiceID: fmt.Sprintf("svc-%d", i%3), Type: events.TypeMessage, Message: fmt.Sprint(i)})
	}
	ctx := t.Context()
	if _, err := f.Next(ctx); !errors.Is(err, events.ErrFeedGap) {
		t.Fatalf("first Next after overflow: %v, want ErrFeedGap", err)
	}
	n := 0
	var lastMsg string
	for {
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		ev, err := f.Next(short)
		cancel()
		if err != nil {
			break
		}
		n++
		lastMsg = ev.Message
	}
	if n < 10 || n >= 20 || lastMsg != "99" {
		t.Fatalf("after the gap: %d events ending with %q; want the kept window (10-19 events) ending with 99", n, lastMsg)
	}
}

// A reader blocked at the head wakes on the next publish of any service.
func TestFeedWakesOnPublish(t *testing.T) {
	t.Parallel()
	bus := events.NewBus()
	f := bus.Follow()
	got := make(chan events.Event, 1)
	go func() {
		ev, _ := f.Next(t.Context())
		got <- ev
	}()
	// Publish only once the reader is blocked at the head, so the event
	// reaches it by a wake-up, not by its first look at the feed.
	awaitWaiting(t, bus, 1)
	bus.Publish(events.Event{ServiceID: "x", Type: events.TypeDeleted})
	select {
	case ev := <-got:
		if ev.ServiceID != "x" || ev.Type != events.TypeDeleted {
			t.Fatalf("got %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not wake on publish")
	}
	if w := bus.Stats().Waiting; w != 0 {
		t.Errorf("%d readers counted waiting after the wake-up, want 0", w)
	}
}

// A feed reader whose context ends stops counting as waiting.
func TestFeedCountsWaitingReaders(t *testing.T) {
	t.Parallel()
	bus := events.NewBus()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := bus.Follow().Next(ctx)
		done <- err
	}()
	awaitWaiting(t, bus, 1)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Next returned no error after cancel")
	}
	if w := bus.Stats().Waiting; w != 0 {
		t.Fatalf("%d readers counted waiting after the reader left, want 0", w)
	}
}

// awaitWaiting polls the bus's count of readers blocked in Next until it is
// n. The bound only ends a test that would hang; no pass or fail depends on
// how long it took.
func awaitWaiting(t *testing.T, bus *events.Bus, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for bus.Stats().Waiting != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d readers waiting, want %d", bus.Stats().Waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
}
