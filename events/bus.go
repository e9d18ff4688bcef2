package events

import (
	"context"
	"sync"
	"time"
)

// restartSeqGap is how far numbering jumps when a service's log is reloaded
// from the journal (see load).
const restartSeqGap = 1 << 24

// DefaultLogLimit is how many recent events per service the bus keeps in
// memory for replay; older durable events are read back from the Journal.
const DefaultLogLimit = 4096

// Bus fans events out to subscribers with replay. The zero value is not
// usable; call NewBus.
type Bus struct {
	mu      sync.Mutex
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
	mu       sync.Mutex
	loaded   bool
	events   []Event // ascending Seq, in-memory window
	nextSeq  uint64
	notify   chan struct{} // closed and replaced on every publish
	journal  Journal
	limit    int
	firstMem uint64 // Seq of events[0] when trimmed; events below it live only in the journal
}

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

// WithErrorHandler receives journal errors (which never stop publication).
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

func (b *Bus) log(serviceID string) *serviceLog {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.logs[serviceID]
	if !ok {
		l = &serviceLog{nextSeq: 1, notify: make(chan struct{}), journal: b.journal, limit: b.limit}
		b.logs[serviceID] = l
	}
	return l
}

// load reads the journal once, so numbering continues after a restart.
// Called with l.mu held.
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

// Publish assigns the event its Seq (and Time, if unset), records it and
// wakes subscribers. It returns the event as recorded. It never waits for a
// subscriber; the only blocking work is the journal append of durable events.
func (b *Bus) Publish(ev Event) Event {
	l := b.log(ev.ServiceID)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.load(ev.ServiceID, b.onError)
	ev.Seq = l.nextSeq
	l.nextSeq++
	if ev.Time.IsZero() {
		ev.Time = b.now()
	}
	if ev.Persistent() && l.journal != nil {
		if err := l.journal.Append(ev); err != nil {
			b.onError(err)
		}
	}
	l.events = append(l.events, ev)
	// Trim in halves of the window so the copy is amortised O(1) per event.
	if len(l.events) >= 2*l.limit {
		drop := len(l.events) - l.limit
		l.events = append(l.events[:0:0], l.events[drop:]...)
		l.firstMem = l.events[0].Seq
	}
	for _, f := range b.observers {
		f(ev)
	}
	b.stats.published.Add(1)
	close(l.notify)
	l.notify = make(chan struct{})
	b.feed.append(ev)
	return ev
}

// History returns the service's known events with Seq > after: durable ones
// from the journal that fell out of memory, then the in-memory window.
func (b *Bus) History(serviceID string, after uint64) []Event {
	l := b.log(serviceID)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.load(serviceID, b.onError)
	out, _ := l.readLocked(serviceID, after, b.onError)
	return out
}

// LastSeq is the Seq of the newest event of the service (0 if none).
func (b *Bus) LastSeq(serviceID string) uint64 {
	l := b.log(serviceID)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.load(serviceID, b.onError)
	if len(l.events) == 0 {
		return 0
	}
	return l.events[len(l.events)-1].Seq
}

// readLocked returns events after the cursor plus the channel that will be
// closed on the next publish.
func (l *serviceLog) readLocked(serviceID string, after uint64, onError func(error)) ([]Event, chan struct{}) {
	var out []Event
	if len(l.events) > 0 && after+1 < l.firstMem && l.journal != nil {
		// The subscriber is behind the in-memory window: durable events
		// come back from the journal. Only byte counters can be missed.
		old, err := l.journal.Load(serviceID)
		if err != nil {
			onError(err)
		}
		for _, e := range old {
			if e.Seq > after && e.Seq < l.firstMem {
				out = append(out, e)
			}
		}
	}
	for _, e := range l.events {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	return out, l.notify
}

// Subscription is a cursor over one service's events. It is owned by one
// goroutine; it holds no resources and needs no closing.
type Subscription struct {
	bus       *Bus
	serviceID string
	after     uint64
	pending   []Event
}

// Subscribe returns a cursor that yields every event of the service with
// Seq > after, replayed history first, then live, without gap or duplicate.
func (b *Bus) Subscribe(serviceID string, after uint64) *Subscription {
	return &Subscription{bus: b, serviceID: serviceID, after: after}
}

// Next blocks until the next event or until ctx is done.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	for len(s.pending) == 0 {
		l := s.bus.log(s.serviceID)
		l.mu.Lock()
		l.load(s.serviceID, s.bus.onError)
		evs, wake := l.readLocked(s.serviceID, s.after, s.bus.onError)
		l.mu.Unlock()
		if len(evs) > 0 {
			s.pending = evs
			break
		}
		s.bus.stats.waiting.Add(1)
		select {
		case <-wake:
			s.bus.stats.waiting.Add(-1)
		case <-ctx.Done():
			s.bus.stats.waiting.Add(-1)
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
	return ev, nil
}

// Cursor is the Seq of the last event returned by Next.
func (s *Subscription) Cursor() uint64 { return s.after }
