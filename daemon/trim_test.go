package daemon

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// The trimmer frees the heap only after an interval without a collection
// and with enough free heap; a collection in between (a busy daemon) or
// little free heap leaves it alone, and its own collection does not count
// as activity the next time.
func TestIdleTrimmer(t *testing.T) {
	readings := []heapReading{
		{gcCycles: 1, freeBytes: 50 << 20}, // start
		{gcCycles: 2, freeBytes: 50 << 20}, // busy: a collection since the last look
		{gcCycles: 2, freeBytes: 50 << 20}, // idle, much free: trim
		{gcCycles: 3, freeBytes: 1 << 20},  // after the trim (its own collection)
		{gcCycles: 3, freeBytes: 2 << 20},  // idle, little free: nothing
		{gcCycles: 3, freeBytes: 20 << 20}, // idle, much free again: trim
		{gcCycles: 4, freeBytes: 0},
	}
	i := 0
	read := func() heapReading { r := readings[i]; i++; return r }
	every := make(chan time.Time)
	frees := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		idleTrimmer{read: read, free: func() { frees++ }, every: every, log: slog.Default()}.run(ctx)
	}()
	for range 4 {
		every <- time.Time{}
	}
	cancel()
	<-done
	if frees != 2 || i != len(readings) {
		t.Fatalf("trimmed %d times after %d readings; want 2 after %d", frees, i, len(readings))
	}
}
