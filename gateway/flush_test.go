package gateway

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// flushCounter is a response writer that records what each flush sent.
type flushCounter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	flushed []string // what each flush sent
	sent    int
}

func (c *flushCounter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(b)
}

func (c *flushCounter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushed = append(c.flushed, c.buf.String()[c.sent:])
	c.sent = c.buf.Len()
}

func (c *flushCounter) flushes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.flushed...)
}

// waitFlushes polls until n flushes happened (the deferred flush runs on
// the timer's goroutine).
func waitFlushes(t *testing.T, c *flushCounter, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if f := c.flushes(); len(f) >= n {
			return f
		}
	}
	t.Fatalf("%d flushes, want %d: %q", len(c.flushes()), n, c.flushes())
	return nil
}

// The first event goes out at once; events that arrive within the gap are
// written and go out together when it has passed, with no further event to
// push them; close flushes what is pending and stops the timer.
func TestPacedFlusherBatchesWithinTheGap(t *testing.T) {
	c := &flushCounter{}
	p := newPacedFlusher(c, c, 200*time.Millisecond)
	if err := p.write([]byte("a"), false); err != nil {
		t.Fatal(err)
	}
	if f := c.flushes(); len(f) != 1 || f[0] != "a" {
		t.Fatalf("after the first event: flushes %q, want [a]", f)
	}
	for _, ev := range []string{"b", "c", "d"} {
		if err := p.write([]byte(ev), false); err != nil {
			t.Fatal(err)
		}
	}
	f := waitFlushes(t, c, 2)
	// Three writes take microseconds; on a machine loaded enough to stall
	// them past the gap, a later one may go in a flush of its own.
	if got := len(f); got > 3 {
		t.Fatalf("%d flushes for four events within the gap: %q", got, f)
	}
	if f[1][0] != 'b' || c.buf.String() != "abcd" {
		t.Fatalf("flushes %q, written %q", f, c.buf.String())
	}
	n := len(c.flushes())
	if err := p.write([]byte("e"), false); err != nil {
		t.Fatal(err)
	}
	p.close()
	if f := c.flushes(); len(f) != n+1 || f[len(f)-1] != "e" {
		t.Fatalf("close did not flush the pending event: %q", f)
	}
	time.Sleep(300 * time.Millisecond) // past the gap: a stopped timer must not flush again
	if f := c.flushes(); len(f) != n+1 {
		t.Fatalf("a flush after close: %q", f)
	}
}

// Events further apart than the gap each go out at once, alone; one that
// arrives with more already read waits for it.
func TestPacedFlusherEventsAtPaceGoAlone(t *testing.T) {
	c := &flushCounter{}
	p := newPacedFlusher(c, c, time.Millisecond)
	defer p.close()
	for i, ev := range []string{"a", "b", "c"} {
		if i > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		if err := p.write([]byte(ev), false); err != nil {
			t.Fatal(err)
		}
		if f := c.flushes(); len(f) != i+1 || f[i] != ev {
			t.Fatalf("event %q at pace: flushes %q", ev, f)
		}
	}
	time.Sleep(5 * time.Millisecond)
	if err := p.write([]byte("d"), true); err != nil { // more is read: wait for it
		t.Fatal(err)
	}
	if err := p.write([]byte("e"), false); err != nil {
		t.Fatal(err)
	}
	if f := c.flushes(); len(f) != 4 || f[3] != "de" {
		t.Fatalf("a burst read together: flushes %q, want its two events in one", f)
	}
}
