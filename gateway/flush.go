package gateway

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// streamFlushGap is the least time between two flushes of a stream to the
// client. An event that arrives sooner after the last flush is written at
// once but flushed when the gap has passed, together with whatever else
// arrived meanwhile. No engine decodes one stream faster than a token a
// millisecond, so at an engine's pace every event still goes out alone and
// at once; an engine faster than that (a simulator, a cached answer) gets
// its tokens to the client in batches of a millisecond, one write and one
// client read for many events instead of one each. On a machine whose
// cores are all busy those per-event system calls were what the gateway
// cost a stream's throughput (docs/performance.md, "The inference
// gateway").
const streamFlushGap = time.Millisecond

// pacedFlusher writes a stream's events and flushes them at most every
// streamFlushGap. The handler's goroutine writes; a timer's goroutine may
// flush what is pending once the gap has passed, so both go through mu.
// close must be called before the handler writes anything else or returns:
// it stops the timer and flushes what is pending.
type pacedFlusher struct {
	mu      sync.Mutex
	w       io.Writer
	f       http.Flusher // nil: the writer cannot flush (every write goes as it can)
	gap     time.Duration
	last    time.Time // the last flush; zero: none yet, so the first event goes at once
	pending bool      // written since the last flush
	timer   *time.Timer
	armed   bool // the timer will flush
	closed  bool
}

func newPacedFlusher(w io.Writer, f http.Flusher, gap time.Duration) *pacedFlusher {
	return &pacedFlusher{w: w, f: f, gap: gap}
}

// write writes one event; more is whether the engine's next bytes are
// already read (then the flush waits for them, as one write).
func (p *pacedFlusher) write(ev []byte, more bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(ev); err != nil {
		return err
	}
	p.pending = true
	if more || p.f == nil || p.armed {
		return nil
	}
	wait := p.gap - time.Since(p.last)
	if p.last.IsZero() || wait <= 0 {
		p.flushLocked()
		return nil
	}
	p.armed = true
	if p.timer == nil {
		p.timer = time.AfterFunc(wait, p.timed)
	} else {
		p.timer.Reset(wait)
	}
	return nil
}

// timed flushes what was written since the last flush, when the gap has
// passed. It runs on the timer's goroutine; a panic there would end the
// daemon, so it is contained (a flush to a client that went away fails
// quietly, never panics, but the handler's writer is not ours to trust).
func (p *pacedFlusher) timed() {
	defer func() { _ = recover() }()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = false
	if p.closed || !p.pending {
		return
	}
	p.flushLocked()
}

func (p *pacedFlusher) flushLocked() {
	p.f.Flush()
	p.pending = false
	p.last = time.Now()
}

// close stops the timer and flushes what is pending; the handler owns the
// writer again afterwards.
func (p *pacedFlusher) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.pending && p.f != nil {
		p.flushLocked()
	}
}
