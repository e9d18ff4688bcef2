package events

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// DefaultFeedLimit is how many recent events of all services together the
// bus keeps for its daemon-wide feed.
const DefaultFeedLimit = 4096

// ErrFeedGap is returned by Feed.Next when the subscriber fell so far behind
// that events it had not read were dropped from the feed's window. The
// cursor has moved to the oldest event still kept; the subscriber should
// re-read the state it derives from events (e.g. list the services again).
var ErrFeedGap = errors.New("events: the feed subscriber fell behind and missed events")

// feed is the daemon-wide, live-only view of the bus: every published event
// of every service in publication order (per service it is Seq order), in a
// bounded window. It keeps no history across restarts: subscribers read
// current state from the records, then follow the feed.
type feed struct {
	mu     sync.Mutex
	events []Event
	first  uint64 // feed position of events[0]
	next   uint64 // position the next event gets
	limit  int
	notify chan struct{} // closed and replaced on every append
}

func newFeed(limit int) *feed {
	return &feed{limit: max(limit, 1), notify: make(chan struct{})}
}

// append adds ev and returns the channel to close, once the caller has
// released its lock, to wake the feed's readers. The caller holds the
// service's log lock, so one service's events enter the feed in Seq order.
func (f *feed) append(ev Event) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
	f.next++
	// Trim in halves of the window so the copy is amortised O(1) per event.
	if len(f.events) >= 2*f.limit {
		drop := len(f.events) - f.limit
		f.events = append(f.events[:0:0], f.events[drop:]...)
		f.first += uint64(drop)
	}
	wake := f.notify
	f.notify = make(chan struct{})
	return wake
}

// Feed is a cursor over every service's events from the moment it was
// created: live only, no replay. Like Subscription it is owned by one
// goroutine, holds no resources and needs no closing; a slow reader never
// blocks publishers, it falls behind and, past the window, gets ErrFeedGap.
type Feed struct {
	f       *feed
	pos     uint64 // feed position of the next event to return
	pending []Event
	waiting *atomic.Int64 // the bus's Stats.Waiting, counted while blocked in Next
}

// Follow returns a feed cursor positioned after the last event published so
// far: Next yields the events published from now on, of every service.
func (b *Bus) Follow() *Feed {
	b.feed.mu.Lock()
	defer b.feed.mu.Unlock()
	return &Feed{f: b.feed, pos: b.feed.next, waiting: &b.stats.waiting}
}

// Next blocks until the next event or until ctx is done. When events were
// dropped before this cursor read them it returns ErrFeedGap once, and the
// following calls continue from the oldest event kept.
func (c *Feed) Next(ctx context.Context) (Event, error) {
	for len(c.pending) == 0 {
		f := c.f
		f.mu.Lock()
		if c.pos < f.first {
			c.pos = f.first
			f.mu.Unlock()
			return Event{}, ErrFeedGap
		}
		if c.pos < f.next {
			c.pending = append(c.pending, f.events[c.pos-f.first:]...)
			c.pos = f.next
			f.mu.Unlock()
			break
		}
		wake := f.notify
		f.mu.Unlock()
		c.waiting.Add(1)
		select {
		case <-wake:
			c.waiting.Add(-1)
		case <-ctx.Done():
			c.waiting.Add(-1)
			return Event{}, ctx.Err()
		}
	}
	ev := c.pending[0]
	c.pending = c.pending[1:]
	return ev, nil
}
