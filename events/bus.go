package events

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// restartSeqGap is how far numbering jumps when a service's log is reloaded
// from the journal (see load).
const restartSeqGap = 1 << 24

// DefaultLogLimit is how many recent events per service the bus keeps in
// memory for replay (between this and twice this, see Publish); older
// durable events are read back from the Journal. It bounds what a busy
// service costs: every /v1 request is an event, kept only in memory, so a
// window of thousands cost megabytes per service a day into serving; a
// start's phases and milestones fit in a few dozen.
const DefaultLogLimit = 256

// Bus fans events out to subscribers with replay. The zero value is not
// usable; call NewBus.
//
// Locking: a service's log has a read-write lock. Publish holds it (for
// writing) only to number the event and to append it, never while an
// observer runs (a second, publication lock orders the observers); it wakes the
// subscribers once it has released it, and writes the journal after that. Subscribers hold it (for
// reading) only to copy the events after their cursor, all at once and in
// parallel; a subscriber that fell behind the in-memory window reads the
// journal without holding it. So neither a slow subscriber nor a slow
// journal ever makes Publish wait for anything but another Publish of the
// same service.
type Bus struct {
	mu      sync.RWMutex
	logs    map[string]*serviceLog
	journal Journal
	limit   int
	now     func() time.Time
	onError func(error)
	feed    *feed
	feedLen int

	observers []func(Event) // see WithObserver
	stats     counters
}

type serviceLog struct {
	// omu orders the service's publications: held (with a deferred
	// unlock) for the whole of a Publish, so observers see the events in
	// Seq order without running under mu, where a stuck or panicking
	// observer would lock every subscriber and publisher out.
	omu      sync.Mutex
	mu       sync.RWMutex
	jmu      sync.Mutex // held while appending to the journal, taken under mu
	loaded   bool
	gone     bool    // forgotten: the service was deleted
	events   []Event // ascending Seq, in-memory window
	nextSeq  uint64
	notify   chan struct{} // closed and replaced on every publish
	journal  Journal
	limit    int
	firstMem uint64 // Seq of events[0] when trimmed; events below it live only in the journal

	// Fan-out accounting (see AwaitFanout): waiters counts the subscribers
	// waiting on notify; Publish moves it to woken, the subscribers its
	// close wakes, and a woken one counts in waiters again once it has
	// handled the event and waits for the next.
	waiters atomic.Int64
	woken   atomic.Int64
	fanned  chan struct{} // signalled when waiters reaches woken
	closed  chan struct{} // the notify the last Publish closed (its woken ones)
}

// ErrForgotten ends a subscription whose service's events were forgotten
// (the service was deleted).
var ErrForgotten = errors.New("the service's events were deleted")

// Option configures a Bus.
type Option func(*Bus)

// WithJournal makes the bus persist durable events and replay them to late
// subscribers.
func WithJournal(j Journal) Option { return func(b *Bus) { b.journal = j } }

// WithLogLimit bounds the in-memory log per service.
func WithLogLimit(n int) Option { return func(b *Bus) { b.limit = max(n, 1) } }

// WithFeedLimit bounds the daemon-wide feed's window (see Follow).
func WithFeedLimit(n int) Option { return func(b *Bus) { b.feedLen = n } }

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(b *Bus) { b.now = now } }

// WithErrorHandler receives journal errors and observers' panics (neither
// ever stops publication).
func WithErrorHandler(f func(error)) Option { return func(b *Bus) { b.onError = f } }

// NewBus returns an empty bus.
func NewBus(opts ...Option) *Bus {
	b := &Bus{logs: map[string]*serviceLog{}, limit: DefaultLogLimit, now: time.Now, onError: func(error) {}, feedLen: DefaultFeedLimit}
	for _, o := range opts {
		o(b)
	}
	b.feed = newFeed(b.feedLen)
	return b
}

// log returns the service's log, loaded from the journal.
func (b *Bus) log(serviceID string) *serviceLog {
	b.mu.RLock()
	l, ok := b.logs[serviceID]
	b.mu.RUnlock()
	if !ok {
		b.mu.Lock()
		if l, ok = b.logs[serviceID]; !ok {
			l = &serviceLog{nextSeq: 1, notify: make(chan struct{}), journal: b.journal, limit: b.limit, fanned: make(chan struct{}, 1)}
			b.logs[serviceID] = l
		}
		b.mu.Unlock()
	}
	l.mu.RLock()
	loaded := l.loaded
	l.mu.RUnlock()
	if !loaded {
		l.lockedLoad(serviceID, b.onError)
	}
	return l
}

// lockedLoad is load under the log's lock, released however load ends:
// it calls the journal and the error handler, and neither may leave the
// log locked.
func (l *serviceLog) lockedLoad(serviceID string, onError func(error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.load(serviceID, onError)
}

// Forget drops the service's in-memory log (the service was deleted; its
// journal is the caller's to delete). Subscribers of it end with
// ErrForgotten (after the deleted event, when one was published last); a
// later Publish for the same ID starts a new log.
func (b *Bus) Forget(serviceID string) {
	b.mu.Lock()
	l, ok := b.logs[serviceID]
	delete(b.logs, serviceID)
	b.mu.Unlock()
	if !ok {
		return
	}
	l.mu.Lock()
	// A deleted event published just before stays readable, so a
	// subscriber learns how its service ended before it gets ErrForgotten.
	if n := len(l.events); n > 0 && l.events[n-1].Type == TypeDeleted {
		l.events = l.events[n-1:]
		l.firstMem = l.events[0].Seq
	} else {
		l.events = nil
	}
	l.gone = true
	close(l.notify)
	l.notify = make(chan struct{})
	l.mu.Unlock()
}

// load reads the journal once, so numbering continues after a restart.
// Called with l.mu held for writing.
func (l *serviceLog) load(serviceID string, onError func(error)) {
	if l.loaded {
		return
	}
	l.loaded = true
	if l.journal == nil {
		return
	}
	old, err := l.journal.Load(serviceID)
	if err != nil {
		onError(err)
		return
	}
	if len(old) > 0 {
		// Byte-progress events are not journaled, so the last run may have
		// used numbers after the last durable event; skip well past them so
		// no cursor a client holds is ever reused.
		l.nextSeq = old[len(old)-1].Seq + restartSeqGap
		if len(old) > l.limit {
			old = old[len(old)-l.limit:]
		}
		l.events = append(old, l.events...)
		l.firstMem = l.events[0].Seq
	}
}

// Publish assigns the event its Seq (and Time, if unset), shows it to the
// observers, records it and wakes subscribers. It returns the event as
// recorded. It never waits for a subscriber; a durable event is appended
// to the journal after the subscribers were woken, before Publish returns.
// No observer runs under the log's lock, and an observer's panic is
// recovered and reported to the error handler, so an observer can never
// leave the service's log locked.
func (b *Bus) Publish(ev Event) Event {
	l := b.log(ev.ServiceID)
	l.omu.Lock()
	defer l.omu.Unlock()
	ev = l.number(ev, b.now)
	for _, f := range b.observers {
		b.observe(f, ev)
	}
	l.mu.Lock()
	l.events = append(l.events, ev)
	// Trim in halves of the window so the copy is amortised O(1) per event.
	if len(l.events) >= 2*l.limit {
		drop := len(l.events) - l.limit
		l.events = append(l.events[:0:0], l.events[drop:]...)
		l.firstMem = l.events[0].Seq
	}
	b.stats.published.Add(1)
	// The waiters are woken once the lock is released, so none of them
	// wakes only to wait again for the read lock (on two cores that
	// doubles the cost of reaching a hundred subscribers).
	wake := l.notify
	l.notify = make(chan struct{})
	l.woken.Store(l.waiters.Swap(0))
	l.closed = wake
	feedWake := b.feed.append(ev)
	journal := ev.Persistent() && l.journal != nil
	if journal {
		// Appends go in Seq order: jmu is taken before mu is released.
		l.jmu.Lock()
	}
	l.mu.Unlock()
	close(wake)
	close(feedWake)
	if !journal {
		return ev
	}
	defer l.jmu.Unlock()
	if err := l.journal.Append(ev); err != nil {
		b.onError(err)
	}
	return ev
}

// number gives the event the service's next Seq (and the time, if unset).
// Called with omu held, which orders the numbers with the publications.
func (l *serviceLog) number(ev Event, now func() time.Time) Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev.Seq = l.nextSeq
	l.nextSeq++
	if ev.Time.IsZero() {
		ev.Time = now()
	}
	return ev
}

// observe shows ev to one observer. A panic is recovered and reported to
// the error handler: an observer's fault (a metric fed a value it refuses)
// must cost its own figure, not the publisher, which may hold a service's
// lifecycle lock or be a manager goroutine the whole daemon depends on.
func (b *Bus) observe(f func(Event), ev Event) {
	defer func() {
		if v := recover(); v != nil {
			b.onError(fmt.Errorf("event observer panicked on the %s event %d of service %s: %v", ev.Type, ev.Seq, ev.ServiceID, v))
		}
	}()
	f(ev)
}

// History returns the service's known events with Seq > after: durable ones
// from the journal that fell out of memory, then the in-memory window.
func (b *Bus) History(serviceID string, after uint64) []Event {
	l := b.log(serviceID)
	view := l.view(after, nil, false)
	if !view.behind {
		return view.events
	}
	old := l.older(serviceID, after, view.first, b.onError)
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.after(view.first-1, old)
}

// LastSeq is the Seq of the newest event of the service (0 if none).
func (b *Bus) LastSeq(serviceID string) uint64 {
	l := b.log(serviceID)
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.events) == 0 {
		return 0
	}
	return l.events[len(l.events)-1].Seq
}

// view is what a reader sees of a log at one moment.
type view struct {
	events []Event       // in memory, after the cursor (nil when behind)
	behind bool          // the cursor is below the in-memory window: read the journal
	first  uint64        // Seq of the window's first event
	wake   chan struct{} // closed on the next publish
	gone   bool
}

// view copies the events after the cursor under the read lock, appending
// them to dst[:0] (a subscriber reuses its buffer, so following live
// allocates nothing per event). A subscriber passes wait: when there is
// nothing to read it will wait on v.wake, and is counted among the log's
// waiters under the same lock (see AwaitFanout).
func (l *serviceLog) view(after uint64, dst []Event, wait bool) view {
	l.mu.RLock()
	defer l.mu.RUnlock()
	v := view{first: l.firstMem, wake: l.notify}
	if len(l.events) > 0 && after+1 < l.firstMem && l.journal != nil {
		v.behind = true
		return v
	}
	v.events = l.after(after, dst[:0])
	v.gone = l.gone && len(v.events) == 0
	if wait && len(v.events) == 0 && !v.gone {
		if w := l.waiters.Add(1); w == l.woken.Load() {
			l.signalFanned()
		}
	}
	return v
}

// leave takes a subscriber out of the fan-out accounting when it stops
// waiting on wake without an event (its context ended); wokenBy is the
// notify whose close last woke it (nil: none).
func (l *serviceLog) leave(wake, wokenBy chan struct{}) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if wake == l.notify {
		l.waiters.Add(-1) // it was waiting in the current generation
		if wokenBy == nil || wokenBy != l.closed {
			return
		}
		// It had come back from the last Publish: it no longer counts
		// among those it woke either.
	} else if wake != l.closed {
		return // woken by an older Publish: not counted any more
	}
	if l.woken.Add(-1) <= l.waiters.Load() {
		l.signalFanned()
	}
}

// signalFanned wakes AwaitFanout (which checks the counts again).
func (l *serviceLog) signalFanned() {
	select {
	case l.fanned <- struct{}{}:
	default:
	}
}

// AwaitFanout returns once every subscriber that the service's last
// Publish woke has taken the event and waits for the next one (or has
// left), or when ctx ends. The journal waits for it before it commits, so
// its fsync and CPU do not compete with delivering the event to the live
// subscribers. It is a heuristic, never a guarantee: a subscriber that
// stops reading without leaving keeps it waiting until ctx ends, and one
// woken by an earlier Publish may be miscounted.
//
// It reports whether the fan-out completed (false: ctx ended first).
func (b *Bus) AwaitFanout(ctx context.Context, serviceID string) bool {
	b.mu.RLock()
	l := b.logs[serviceID]
	b.mu.RUnlock()
	if l == nil {
		return true
	}
	for l.waiters.Load() < l.woken.Load() {
		select {
		case <-l.fanned:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// after appends the in-memory events with Seq > cursor to dst. Called with
// l.mu held.
func (l *serviceLog) after(cursor uint64, dst []Event) []Event {
	i := sort.Search(len(l.events), func(i int) bool { return l.events[i].Seq > cursor })
	if i == len(l.events) {
		return dst
	}
	return append(dst, l.events[i:]...)
}

// older reads the durable events in (after, first) from the journal,
// without holding the log's lock. Only byte counters can be missing.
func (l *serviceLog) older(serviceID string, after, first uint64, onError func(error)) []Event {
	// Every event below first was published before the caller's view;
	// its append has ended or holds jmu now.
	l.jmu.Lock()
	l.jmu.Unlock() //nolint:staticcheck // an empty critical section: wait for the append in progress
	old, err := l.journal.Load(serviceID)
	if err != nil {
		onError(err)
	}
	var out []Event
	for _, e := range old {
		if e.Seq > after && e.Seq < first {
			out = append(out, e)
		}
	}
	return out
}

// maxReusedBuf bounds the batch buffer a subscription keeps between calls
// (see Subscription.buf), so a hundred followers that once replayed a long
// history do not each hold a copy of it.
const maxReusedBuf = 64

// Subscription is a cursor over one service's events. It is owned by one
// goroutine; it holds no resources and needs no closing.
type Subscription struct {
	bus       *Bus
	serviceID string
	after     uint64
	pending   []Event
	buf       []Event // reused by view: pending points into it while it is not from the journal
	skipTo    uint64  // after pending (read from the journal) drains, the cursor moves here
	log       *serviceLog
	wokenBy   chan struct{} // the notify whose close last woke it (see AwaitFanout)
}

// Subscribe returns a cursor that yields every event of the service with
// Seq > after, replayed history first, then live, without gap or duplicate.
func (b *Bus) Subscribe(serviceID string, after uint64) *Subscription {
	return &Subscription{bus: b, serviceID: serviceID, after: after, log: b.log(serviceID)}
}

// Next blocks until the next event or until ctx is done. It fails with
// ErrForgotten when the service's events were forgotten.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	for len(s.pending) == 0 {
		v := s.log.view(s.after, s.buf, true)
		if v.gone {
			return Event{}, ErrForgotten
		}
		if v.behind {
			old := s.log.older(s.serviceID, s.after, v.first, s.bus.onError)
			if len(old) == 0 {
				s.after = v.first - 1
				continue
			}
			s.pending, s.skipTo = old, v.first-1
			break
		}
		if len(v.events) > 0 {
			s.pending, s.buf = v.events, nil
			if cap(v.events) <= maxReusedBuf {
				s.buf = v.events // a replay's large batch is not kept
			}
			break
		}
		s.bus.stats.waiting.Add(1)
		select {
		case <-v.wake:
			s.bus.stats.waiting.Add(-1)
			s.wokenBy = v.wake
		case <-ctx.Done():
			s.bus.stats.waiting.Add(-1)
			s.log.leave(v.wake, s.wokenBy)
			return Event{}, ctx.Err()
		}
	}
	ev := s.pending[0]
	s.pending = s.pending[1:]
	s.after = ev.Seq
	// Lag: the events newer than this one that were already there when
	// the subscriber read its batch (a subscriber that keeps up reads one
	// event at a time, lag 0; one replaying history or falling behind
	// reads many).
	s.bus.stats.delivery(uint64(len(s.pending)))
	if len(s.pending) == 0 && s.skipTo > s.after {
		s.after = s.skipTo
	}
	return ev, nil
}

// Cursor is the Seq of the last event returned by Next.
func (s *Subscription) Cursor() uint64 { return s.after }
