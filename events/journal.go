package events

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"aima/state"
)

// journalKeep is how many durable events per service are kept.
const journalKeep = 1000

// journalPruneEvery: a service's journal is pruned to journalKeep entries
// when it appends an event whose Seq is a multiple of this.
const journalPruneEvery = 200

// journalBatchMax bounds one batch, so a burst is written in transactions
// of bounded size (and always within the bus's in-memory window).
const journalBatchMax = 512

// StoreJournal persists each service's durable events in the state store, under
// events/<service>/<seq>, so history survives daemon restarts.
//
// Append queues the event and returns; one writer goroutine writes what is
// queued in one transaction (one fsync) per batch, pruning in the same
// transaction, once the newest event's fan-out to live subscribers is done
// (AwaitFanout). An event is on disk at most journalFanoutMax plus one
// commit after its Publish, not when Publish returns: the fsync stays off
// the path that wakes subscribers and out of the delivery that follows, and
// a burst of events costs one commit instead of one each. Close writes what
// is queued; a daemon killed outright loses the events of its last commit
// window, never a status (the service record is written before its status
// event is published). See docs/decisions.md.
type StoreJournal struct {
	store   state.Store
	onError func(error)

	mu      sync.Mutex
	written *sync.Cond // signalled after each batch
	queue   []journalOp
	queued  uint64 // ops ever queued
	done    uint64 // ops written (or failed)
	wake    chan struct{}
	running bool // the writer goroutine exists
	closed  bool
	exited  chan struct{}

	fanout  func(ctx context.Context, serviceID string) bool // see AwaitFanout
	hurry   context.CancelFunc                               // ends the writer's wait for a fan-out
	syncing int                                              // callers in Sync: the writer does not wait for a fan-out
}

// journalFanoutMax bounds how long the writer waits for a fan-out before it
// commits: an event is on disk at most this long plus one commit after its
// Publish.
const journalFanoutMax = 10 * time.Millisecond

// AwaitFanout makes the writer wait, before each commit, until f returns
// for the service of the newest queued event: the daemon passes
// Bus.AwaitFanout, so the commit's fsync and CPU come after the live
// subscribers have the event, not among them. The wait is bounded by
// journalFanoutMax and cut short by Sync and Close. Call it before the
// first Append.
func (j *StoreJournal) AwaitFanout(f func(ctx context.Context, serviceID string) bool) { j.fanout = f }

// journalOp is an event to write or, with forget set, a service whose
// entries to delete.
type journalOp struct {
	ev     Event
	forget string
}

// NewJournal returns a journal over the store. onError (nil: ignored)
// receives the writer's failures, which never stop publication.
func NewJournal(s state.Store, onError func(error)) *StoreJournal {
	if onError == nil {
		onError = func(error) {}
	}
	j := &StoreJournal{store: s, onError: onError, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	j.written = sync.NewCond(&j.mu)
	return j
}

func journalPrefix(id string) string { return "events/" + id + "/" }

func journalKey(ev Event) string {
	return fmt.Sprintf("%s%020d", journalPrefix(ev.ServiceID), ev.Seq)
}

// Load implements Journal. Events queued before the call are
// written first, so Load sees every event appended before it.
func (j *StoreJournal) Load(id string) ([]Event, error) {
	j.Sync()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := j.store.List(ctx, journalPrefix(id))
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(entries))
	for _, e := range entries {
		var ev Event
		if err := json.Unmarshal(e.Value, &ev); err == nil {
			out = append(out, ev)
		}
	}
	return out, nil
}

// Append implements Journal: it queues the event for the writer.
// After Close it writes at once.
func (j *StoreJournal) Append(ev Event) error {
	if !j.enqueue(journalOp{ev: ev}) {
		return j.write([]journalOp{{ev: ev}})
	}
	return nil
}

// Forget deletes a service's history (on service delete), after the events
// queued before it, and returns once it is done.
func (j *StoreJournal) Forget(_ context.Context, id string) {
	if !j.enqueue(journalOp{forget: id}) {
		if err := j.write([]journalOp{{forget: id}}); err != nil {
			j.onError(err)
		}
		return
	}
	j.Sync()
}

// Sync waits until everything queued before the call is written.
func (j *StoreJournal) Sync() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.syncing++
	defer func() { j.syncing-- }()
	if j.hurry != nil {
		j.hurry()
	}
	for target := j.queued; j.done < target; {
		j.written.Wait()
	}
}

// Close writes what is queued and ends the writer. Later appends are
// written one at a time. Safe to call more than once.
func (j *StoreJournal) Close() {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	j.closed = true
	if j.hurry != nil {
		j.hurry()
	}
	running := j.running
	j.mu.Unlock()
	if !running {
		return
	}
	j.signal()
	<-j.exited
}

// enqueue queues op and wakes the writer (starting it on first use); false
// once the journal is closed.
func (j *StoreJournal) enqueue(op journalOp) bool {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return false
	}
	j.queue = append(j.queue, op)
	j.queued++
	if !j.running {
		j.running = true
		go j.run()
	}
	j.mu.Unlock()
	j.signal()
	return true
}

func (j *StoreJournal) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// run is the writer: it takes the queue in batches until Close, and
// writes what is left before it ends.
func (j *StoreJournal) run() {
	defer close(j.exited)
	for {
		j.mu.Lock()
		if n := len(j.queue); n > 0 && j.fanout != nil && !j.closed && j.syncing == 0 && j.queue[n-1].forget == "" {
			id := j.queue[n-1].ev.ServiceID
			ctx, cancel := context.WithTimeout(context.Background(), journalFanoutMax)
			j.hurry = cancel
			j.mu.Unlock()
			if err := contained("fan-out", func() error { j.fanout(ctx, id); return nil }); err != nil {
				j.onError(err)
			}
			j.mu.Lock()
			j.hurry = nil
			cancel()
		}
		batch := j.queue[:min(len(j.queue), journalBatchMax)]
		j.queue = j.queue[len(batch):]
		closed := j.closed
		j.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-j.wake
			continue
		}
		if err := contained("write", func() error { return j.write(batch) }); err != nil {
			j.onError(err)
		}
		j.mu.Lock()
		j.done += uint64(len(batch))
		if len(j.queue) == 0 {
			j.queue = nil // let a burst's backing array go
		}
		j.written.Broadcast()
		j.mu.Unlock()
	}
}

// write applies a batch in one transaction: its events, the prune of each
// service that reached a prune point, and its forgets.
func (j *StoreJournal) write(batch []journalOp) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ops := make([]state.Op, 0, len(batch))
	fresh := map[string]int{} // events of this batch per service, for the prune
	var prune []string
	for _, op := range batch {
		if op.forget != "" {
			prefix := journalPrefix(op.forget)
			entries, err := j.store.List(ctx, prefix)
			if err != nil {
				return err
			}
			// Events of the service queued before the forget go too.
			ops = slices.DeleteFunc(ops, func(o state.Op) bool { return !o.Delete && strings.HasPrefix(o.Key, prefix) })
			for _, e := range entries {
				ops = append(ops, state.Op{Key: e.Key, Delete: true})
			}
			delete(fresh, op.forget)
			continue
		}
		raw, err := json.Marshal(op.ev)
		if err != nil {
			return err
		}
		ops = append(ops, state.Op{Key: journalKey(op.ev), Value: raw})
		fresh[op.ev.ServiceID]++
		if op.ev.Seq%journalPruneEvery == 0 {
			prune = append(prune, op.ev.ServiceID)
		}
	}
	for _, id := range prune {
		entries, err := j.store.List(ctx, journalPrefix(id))
		if err != nil {
			return err
		}
		// The batch's own events are newer than every stored entry.
		for _, e := range entries[:max(0, min(len(entries), len(entries)+fresh[id]-journalKeep))] {
			ops = append(ops, state.Op{Key: e.Key, Delete: true})
		}
	}
	return state.Apply(ctx, j.store, ops)
}

// contained runs one step of the journal's writer, turning a panic in it
// (in the store, or in the fan-out callback) into that step's error: the
// writer goes on, and the daemon with it.
func contained(step string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in the journal's %s: %v\n%s", step, v, debug.Stack())
		}
	}()
	return f()
}
