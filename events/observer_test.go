package events_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/events"
)

// An observer that panics (a metric fed a value it refuses) costs its own
// figure only: Publish returns normally, reports the panic to the error
// handler, and the service's log stays usable for publishers and
// subscribers. Before, the panic left the log locked: every later Publish
// of the service (its stop, its delete) hung until the daemon restarted.
func TestPanickingObserverLeavesTheLogUsable(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var reported []error
	b := events.NewBus(
		events.WithObserver(func(ev events.Event) {
			if ev.Type == events.TypeRequest {
				panic("counter cannot decrease in value")
			}
		}),
		events.WithErrorHandler(func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }),
	)
	publish := func(ev events.Event) (panicked any) {
		defer func() { panicked = recover() }()
		b.Publish(ev)
		return nil
	}
	if p := publish(events.Event{ServiceID: "s", Type: events.TypeRequest, Message: "hostile usage"}); p != nil {
		t.Fatalf("Publish panicked with its observer: %v", p)
	}
	if p := publish(events.Event{ServiceID: "s", Type: events.TypeStatus, Status: "stopping"}); p != nil {
		t.Fatalf("the next Publish panicked: %v", p)
	}
	if got := b.LastSeq("s"); got != 2 {
		t.Fatalf("LastSeq = %d, want 2", got)
	}
	sub := b.Subscribe("s", 0)
	for want := uint64(1); want <= 2; want++ {
		ev, err := sub.Next(context.Background())
		if err != nil || ev.Seq != want {
			t.Fatalf("Next = %d, %v; want %d", ev.Seq, err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "counter cannot decrease") {
		t.Fatalf("error handler got %v, want the observer's panic once", reported)
	}
}

// Observers still see every event of a service in Seq order, with its Seq
// and time, when publishers of the service race.
func TestObserversSeeEventsInSeqOrder(t *testing.T) {
	t.Parallel()
	var last, count uint64
	var bad bool
	b := events.NewBus(events.WithObserver(func(ev events.Event) {
		// Serialised per service by the bus: no lock needed here, and
		// -race would say otherwise.
		if ev.Seq != last+1 || ev.Time.IsZero() {
			bad = true
		}
		last = ev.Seq
		count++
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				b.Publish(events.Event{ServiceID: "s", Type: events.TypeMessage})
			}
		})
	}
	wg.Wait()
	if bad || count != 1600 || last != 1600 {
		t.Fatalf("observer saw %d events, last Seq %d, out of order: %v", count, last, bad)
	}
}

// panickyJournal fails its first Load with a panic (a damaged store).
type panickyJournal struct{ loads int }

func (j *panickyJournal) Load(string) ([]events.Event, error) {
	j.loads++
	if j.loads == 1 {
		panic("damaged journal")
	}
	return nil, nil
}

func (j *panickyJournal) Append(events.Event) error { return nil }

// A journal that panics while the log loads does not leave the log
// locked: the panic reaches the caller, and the next reader goes on.
func TestPanickingJournalLoadLeavesTheLogUsable(t *testing.T) {
	t.Parallel()
	b := events.NewBus(events.WithJournal(&panickyJournal{}))
	func() {
		defer func() { _ = recover() }()
		b.Publish(events.Event{ServiceID: "s", Type: events.TypeMessage})
	}()
	done := make(chan uint64, 1)
	go func() { done <- b.LastSeq("s") }()
	select {
	case <-done:
	case <-time.After(time.Minute): // a deadlock has no other symptom than time
		t.Fatal("the log stayed locked after the journal's panic")
	}
	if ev := b.Publish(events.Event{ServiceID: "s", Type: events.TypeMessage}); ev.Seq != 1 {
		t.Fatalf("published Seq %d", ev.Seq)
	}
}
