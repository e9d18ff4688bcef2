package events

import (
	"sync/atomic"
	"time"
)

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
	// Waiting is the number of subscribers (Subscription) and daemon-wide
	// feed readers (Feed) blocked in Next right now, that is, following
	// live (a follower spends nearly all its time there).
	Waiting int64
	// LagCounts[i] counts deliveries whose lag was at most LagBuckets[i]
	// and more than LagBuckets[i-1]; the last element counts larger lags.
	LagCounts []uint64
	LagSum    uint64 // the sum of all delivery lags
	Services  int    // services with an event log in memory
	// SocketWriteCounts[i] counts live events written to a subscriber's
	// connection (see Bus.RecordSocketWrite) whose time from publication
	// was at most SocketWriteBuckets[i] and more than
	// SocketWriteBuckets[i-1]; the last element counts slower ones.
	// SocketWriteSum is their total time.
	SocketWriteCounts []uint64
	SocketWriteSum    time.Duration
}

// SocketWriteBuckets are the upper bounds of the publish → socket buckets in
// Stats: a quarter of a millisecond apart up to 2 ms, where a live follower
// on one host should be (a percentile read there is within 0.25 ms), then
// half a millisecond to 3 ms, a millisecond to 5 ms, and coarser beyond.
var SocketWriteBuckets = []time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond, 750 * time.Microsecond,
	time.Millisecond, 1250 * time.Microsecond, 1500 * time.Microsecond, 1750 * time.Microsecond,
	2 * time.Millisecond, 2500 * time.Microsecond, 3 * time.Millisecond, 4 * time.Millisecond,
	5 * time.Millisecond, 7500 * time.Microsecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second,
}

// counters are the bus's live counters behind Stats.
type counters struct {
	published, delivered, lagSum atomic.Uint64
	waiting                      atomic.Int64
	lag                          [9]atomic.Uint64  // len(LagBuckets)+1
	write                        [22]atomic.Uint64 // len(SocketWriteBuckets)+1
	writeSum                     atomic.Int64      // nanoseconds
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

// RecordSocketWrite records that a live event's bytes were handed to a subscriber's
// connection now. The front-ends that write events to a socket (the HTTP
// API's SSE streams) call it once per event and subscriber, for events
// published while the stream was open (a replayed history's age says
// nothing about delivery); Stats then holds the time from Publish to the
// socket, for monitoring and the fan-out benchmark. Safe for concurrent use.
func (b *Bus) RecordSocketWrite(ev Event) {
	d := max(b.now().Sub(ev.Time), 0)
	b.stats.writeSum.Add(int64(d))
	b.stats.write[SocketWriteBucket(d)].Add(1)
}

// SocketWriteBucket is the index of Stats.SocketWriteCounts that a publish → socket
// time of d counts in: the first bound of SocketWriteBuckets at least d, or
// len(SocketWriteBuckets) for slower ones. The fan-out benchmark files its
// baseline's writes with it too.
func SocketWriteBucket(d time.Duration) int {
	i := 0
	for i < len(SocketWriteBuckets) && d > SocketWriteBuckets[i] {
		i++
	}
	return i
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	s := Stats{
		Published: b.stats.published.Load(), Delivered: b.stats.delivered.Load(), Waiting: b.stats.waiting.Load(),
		LagSum: b.stats.lagSum.Load(), LagCounts: make([]uint64, len(LagBuckets)+1),
		SocketWriteCounts: make([]uint64, len(SocketWriteBuckets)+1), SocketWriteSum: time.Duration(b.stats.writeSum.Load()),
	}
	for i := range s.LagCounts {
		s.LagCounts[i] = b.stats.lag[i].Load()
	}
	for i := range s.SocketWriteCounts {
		s.SocketWriteCounts[i] = b.stats.write[i].Load()
	}
	b.mu.Lock()
	s.Services = len(b.logs)
	b.mu.Unlock()
	return s
}

// WithObserver calls f with every event as it is published, in each
// service's order, before subscribers wake. f runs on the publisher's
// goroutine, not under the log's lock (subscribers read on while it runs),
// but the service's next Publish waits for it: it must be quick and must
// not publish to the same service. A panic in f is recovered and reported
// to the error handler (WithErrorHandler). The daemon's metrics use it to
// count phases and outcomes from the events themselves.
func WithObserver(f func(Event)) Option { return func(b *Bus) { b.observers = append(b.observers, f) } }
