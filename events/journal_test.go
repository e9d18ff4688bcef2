package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"aima/errs"
	"aima/state"
)

// countingStore counts the batches (commits) a journal writes and can hold
// them back until released, so a test can queue events behind a commit.
type countingStore struct {
	state.Store
	batches atomic.Int64
	gate    chan struct{} // nil: batches go through
	once    sync.Once
	entered chan struct{}
}

func (c *countingStore) Batch(ctx context.Context, ops []state.Op) error {
	if c.gate != nil {
		c.once.Do(func() { close(c.entered) })
		<-c.gate
	}
	c.batches.Add(1)
	return c.Store.(state.Batcher).Batch(ctx, ops)
}

func ev(id string, seq uint64) Event {
	return Event{ServiceID: id, Seq: seq, Type: TypeMessage, Message: fmt.Sprintf("event %d", seq)}
}

func loadSeqs(t *testing.T, j *StoreJournal, id string) []uint64 {
	t.Helper()
	evs, err := j.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

// Events queued while a commit is in progress go to disk together in the
// next one, in order; Load sees every event appended before it.
func TestJournalGroupsAppendsIntoCommits(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: state.NewMemory(), gate: make(chan struct{}), entered: make(chan struct{})}
	j := NewJournal(st, func(err error) { t.Error(err) })
	defer j.Close()
	if err := j.Append(ev("a", 1)); err != nil {
		t.Fatal(err)
	}
	<-st.entered // the writer is committing event 1
	for seq := uint64(2); seq <= 300; seq++ {
		if err := j.Append(ev("a", seq)); err != nil {
			t.Fatal(err)
		}
	}
	close(st.gate)
	got := loadSeqs(t, j, "a")
	if len(got) != 300 || got[0] != 1 || got[299] != 300 {
		t.Fatalf("loaded %d events (%v…), want 1-300", len(got), got[:min(len(got), 5)])
	}
	if n := st.batches.Load(); n != 2 {
		t.Errorf("%d commits for 300 events queued behind one, want 2", n)
	}
}

// A service's journal is pruned to its last journalKeep events, in the
// commits that reach a prune point.
func TestJournalPrunesToTheLastEvents(t *testing.T) {
	t.Parallel()
	j := NewJournal(state.NewMemory(), func(err error) { t.Error(err) })
	defer j.Close()
	const n = journalKeep + 2*journalPruneEvery
	for seq := uint64(1); seq <= n; seq++ {
		if err := j.Append(ev("a", seq)); err != nil {
			t.Fatal(err)
		}
		if seq%97 == 0 {
			j.Sync() // commits of various sizes
		}
	}
	got := loadSeqs(t, j, "a")
	if len(got) != journalKeep || got[0] != n-journalKeep+1 || got[len(got)-1] != n {
		t.Fatalf("kept %d events from %v to %v, want the last %d", len(got), got[0], got[len(got)-1], journalKeep)
	}
}

// Forget deletes the service's stored events and the ones still queued
// before it, and leaves other services alone.
func TestJournalForgetIncludesQueuedEvents(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: state.NewMemory(), gate: make(chan struct{}), entered: make(chan struct{})}
	j := NewJournal(st, func(err error) { t.Error(err) })
	defer j.Close()
	_ = j.Append(ev("a", 1))
	<-st.entered
	_ = j.Append(ev("a", 2))
	_ = j.Append(ev("b", 1))
	forgot := make(chan struct{})
	go func() { j.Forget(t.Context(), "a"); close(forgot) }()
	close(st.gate)
	<-forgot
	if got := loadSeqs(t, j, "a"); len(got) != 0 {
		t.Errorf("after Forget: events %v of the service remain", got)
	}
	if got := loadSeqs(t, j, "b"); len(got) != 1 {
		t.Errorf("another service's events: %v, want [1]", got)
	}
}

// Close writes what is queued; later appends are written at once.
func TestJournalCloseWritesTheQueue(t *testing.T) {
	t.Parallel()
	mem := state.NewMemory()
	j := NewJournal(mem, func(err error) { t.Error(err) })
	for seq := uint64(1); seq <= 50; seq++ {
		_ = j.Append(ev("a", seq))
	}
	j.Close()
	j.Close()
	if err := j.Append(ev("a", 51)); err != nil {
		t.Fatal(err)
	}
	if got := loadSeqs(t, NewJournal(mem, nil), "a"); len(got) != 51 {
		t.Errorf("after Close: %d events stored, want 51", len(got))
	}
}

// A store that fails is reported to onError and holds nothing up: Sync
// returns, and an append after Close returns the error.
func TestJournalReportsStoreFailures(t *testing.T) {
	t.Parallel()
	mem := state.NewMemory()
	_ = mem.Close()
	var failures atomic.Int64
	j := NewJournal(mem, func(err error) {
		if errs.KindOf(err) == errs.Unavailable {
			failures.Add(1)
		}
	})
	_ = j.Append(ev("a", 1))
	j.Sync()
	j.Close()
	if failures.Load() != 1 {
		t.Errorf("%d failures reported, want 1", failures.Load())
	}
	if err := j.Append(ev("a", 2)); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("append to a closed store after Close: %v, want its error", err)
	}
}

// The writer waits for the fan-out of the newest queued event before it
// commits (so its fsync does not compete with the delivery), and commits
// when the fan-out is done; a Sync does not wait for a fan-out, it cuts the
// wait short.
func TestJournalCommitsAfterTheFanout(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: state.NewMemory()}
	j := NewJournal(st, func(err error) { t.Error(err) })
	defer j.Close()
	asked := make(chan string, 10)
	fanouts := make(chan chan struct{}, 2) // one per wait, in order
	fannedOut := make(chan struct{})
	fanouts <- fannedOut
	fanouts <- make(chan struct{}) // the second fan-out never ends
	var hurried atomic.Bool
	j.AwaitFanout(func(ctx context.Context, id string) bool {
		asked <- id
		done := <-fanouts
		select {
		case <-done:
			return true
		case <-ctx.Done():
			hurried.Store(errors.Is(ctx.Err(), context.Canceled))
			return false
		}
	})
	if err := j.Append(ev("a", 1)); err != nil {
		t.Fatal(err)
	}
	if id := <-asked; id != "a" {
		t.Fatalf("the writer awaited the fan-out of %q, want a", id)
	}
	if n := st.batches.Load(); n != 0 {
		t.Fatalf("%d commits before the fan-out ended", n)
	}
	close(fannedOut)
	j.Sync()
	if n := st.batches.Load(); n != 1 || hurried.Load() {
		t.Fatalf("%d commits after the fan-out (hurried %v), want 1 not hurried", n, hurried.Load())
	}

	if err := j.Append(ev("a", 2)); err != nil {
		t.Fatal(err)
	}
	<-asked
	if got := loadSeqs(t, j, "a"); len(got) != 2 || !hurried.Load() {
		t.Fatalf("Load (which syncs) read %v, hurried %v: want events 1 and 2, the wait cut short", got, hurried.Load())
	}
}
