package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"

	"aima/events"
)

// fanoutFloor is the least this machine can do for BenchmarkEventFanout's
// traffic, the baseline its figures are divided by: a bare TCP server that
// answers each client with the same HTTP/1.1 chunked SSE stream the daemon
// sends (same headers' role, same event JSON, same framing) and nothing
// else. As in the bus, one goroutine per connection waits for a channel
// that publish closes, then writes the new events in one write call; the
// event is encoded once for all clients. The clients are the benchmark's
// own sseReader, so both sides of the ratio time the same client code; and
// like the daemon's streams (events.Bus.RecordSocketWrite) it files each write's time
// from publish in events.SocketWriteBuckets, so both sides of the publish → socket
// ratio are read from the same buckets.
//
// A variant that wrote every connection from the publishing goroutine, one
// after another, instead of waking one goroutine each, was tried and had
// the same percentiles on this machine's two cores (docs/performance.md).
type fanoutFloor struct {
	ln  net.Listener
	ctx context.Context
	wg  sync.WaitGroup

	mu     sync.Mutex
	frames []floorFrame  // every published event
	wake   chan struct{} // closed and replaced by publish

	written []atomic.Uint64 // per events.SocketWriteBuckets, and one for slower writes
}

// floorFrame is a published event as one HTTP chunk, and when it was
// published.
type floorFrame struct {
	chunk []byte
	at    time.Time
}

func startFanoutFloor(ctx context.Context) (*fanoutFloor, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fanoutFloor{ln: ln, ctx: ctx, wake: make(chan struct{}), written: make([]atomic.Uint64, len(events.SocketWriteBuckets)+1)}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *fanoutFloor) URL() string { return "http://" + f.ln.Addr().String() + "/" }

// Close stops accepting and waits for every connection's goroutine: call it
// after ctx is done, which ends them.
func (f *fanoutFloor) Close() {
	_ = f.ln.Close()
	f.wg.Wait()
}

func (f *fanoutFloor) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.serve(c)
	}
}

func (f *fanoutFloor) serve(c net.Conn) {
	defer f.wg.Done()
	defer c.Close()
	stop := context.AfterFunc(f.ctx, func() { _ = c.Close() })
	defer stop()
	// The request line and headers are read and ignored.
	req := textproto.NewReader(bufio.NewReader(c))
	if _, err := req.ReadLine(); err != nil {
		return
	}
	if _, err := req.ReadMIMEHeader(); err != nil {
		return
	}
	f.mu.Lock()
	next := len(f.frames)
	f.mu.Unlock()
	if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")); err != nil {
		return
	}
	var out []byte
	for {
		f.mu.Lock()
		pending, wake := f.frames[next:], f.wake
		next = len(f.frames)
		f.mu.Unlock()
		if len(pending) == 0 {
			select {
			case <-wake:
				continue
			case <-f.ctx.Done():
				return
			}
		}
		out = out[:0]
		for _, p := range pending {
			out = append(out, p.chunk...)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		for _, p := range pending {
			f.written[events.SocketWriteBucket(time.Since(p.at))].Add(1)
		}
	}
}

// publish stamps ev, encodes it once as the daemon's SSE event and wakes
// every connection.
func (f *fanoutFloor) publish(ev events.Event) {
	f.mu.Lock()
	ev.Seq = uint64(len(f.frames) + 1)
	ev.Time = time.Now()
	data, _ := json.Marshal(ev)
	payload := fmt.Sprintf("event: progress\ndata: %s\n\n", data)
	f.frames = append(f.frames, floorFrame{chunk: fmt.Appendf(nil, "%x\r\n%s\r\n", len(payload), payload), at: ev.Time})
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

// writeCounts returns the floor's publish → socket counts so far, in the
// layout of events.Stats.SocketWriteCounts.
func (f *fanoutFloor) writeCounts() []uint64 {
	out := make([]uint64, len(f.written))
	for i := range f.written {
		out[i] = f.written[i].Load()
	}
	return out
}

// bucketQuantile is the q-quantile of the counts (events.SocketWriteBuckets'
// layout), interpolated linearly inside its bucket; one in the last,
// unbounded bucket is reported as the last bound.
func bucketQuantile(counts []uint64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range counts {
		if c == 0 || cum+float64(c) < rank {
			cum += float64(c)
			continue
		}
		if i == len(events.SocketWriteBuckets) {
			break
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = events.SocketWriteBuckets[i-1]
		}
		frac := (rank - cum) / float64(c)
		return lo + time.Duration(frac*float64(events.SocketWriteBuckets[i]-lo))
	}
	return events.SocketWriteBuckets[len(events.SocketWriteBuckets)-1]
}

// shareWithin is the fraction of the counts at most le (a bound of
// events.SocketWriteBuckets).
func shareWithin(counts []uint64, le time.Duration) float64 {
	var in, total uint64
	for i, c := range counts {
		total += c
		if i < len(events.SocketWriteBuckets) && events.SocketWriteBuckets[i] <= le {
			in += c
		}
	}
	if total == 0 {
		return 0
	}
	return float64(in) / float64(total)
}

// subCounts is a − b, element by element.
func subCounts(a, b []uint64) []uint64 {
	out := make([]uint64, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}
