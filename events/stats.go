package events

import "sync/atomic"

// LagBuckets are the upper bounds of the delivery-lag buckets in Stats: how
// many newer events of the service already existed when a subscriber was
// handed an event (0: it was handed the newest one, it keeps up).
var LagBuckets = []uint64{0, 1, 4, 16, 64, 256, 1024, 4096}

// Stats are the bus's counters since it was made, for monitoring (the
// daemon's /metrics). They are plain numbers so the bus stays a
// standard-library leaf; package metrics turns them into Prometheus series.
type Stats struct {
	Published uint64 // events published
	Delivered uint64 // events handed to subscribers by Next
	// Waiting is the number of subscribers blocked in Next right now, that
	// is, following live (a follower spends nearly all its time there).
	Waiting int64
	// LagCounts[i] counts deliveries whose lag was at most LagBuckets[i]
	// and more than LagBuckets[i-1]; the last element counts larger lags.
	LagCounts []uint64
	LagSum    uint64 // the sum of all delivery lags
	Services  int    // services with an event log in memory
}

// counters are the bus's live counters behind Stats.
type counters struct {
	published, delivered, lagSum atomic.Uint64
	waiting                      atomic.Int64
	lag                          [9]atomic.Uint64 // len(LagBuckets)+1
}

func (c *counters) delivery(lag uint64) {
	c.delivered.Add(1)
	c.lagSum.Add(lag)
	i := 0
	for i < len(LagBuckets) && lag > LagBuckets[i] {
		i++
	}
	c.lag[i].Add(1)
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	s := Stats{
		Published: b.stats.published.Load(), Delivered: b.stats.delivered.Load(), Waiting: b.stats.waiting.Load(),
		LagSum: b.stats.lagSum.Load(), LagCounts: make([]uint64, len(LagBuckets)+1),
	}
	for i := range s.LagCounts {
		s.LagCounts[i] = b.stats.lag[i].Load()
	}
	b.mu.Lock()
	s.Services = len(b.logs)
	b.mu.Unlock()
	return s
}

// WithObserver calls f with every event as it is published, in each
// service's order, before subscribers wake. f runs on the publisher's
// goroutine with the service's log locked: it must be quick and must not
// publish or read the bus. The daemon's metrics use it to count phases and
// outcomes from the events themselves.
func WithObserver(f func(Event)) Option { return func(b *Bus) { b.observers = append(b.observers, f) } }
