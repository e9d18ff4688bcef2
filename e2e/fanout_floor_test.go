package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/textproto"
	"sync"
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
// own sseReader, so both sides of the ratio time the same client code.
type fanoutFloor struct {
	ln  net.Listener
	ctx context.Context
	wg  sync.WaitGroup

	mu     sync.Mutex
	frames [][]byte      // every published event as one HTTP chunk
	wake   chan struct{} // closed and replaced by publish
}

func startFanoutFloor(ctx context.Context) (*fanoutFloor, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fanoutFloor{ln: ln, ctx: ctx, wake: make(chan struct{})}
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
			out = append(out, p...)
		}
		if _, err := c.Write(out); err != nil {
			return
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
	f.frames = append(f.frames, fmt.Appendf(nil, "%x\r\n%s\r\n", len(payload), payload))
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}
