package daemon

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// trimInterval is how often the idle trimmer looks at the heap.
const trimInterval = 30 * time.Second

// trimFloor is how much free heap, kept from the system, is worth a trim.
const trimFloor = 8 << 20

// heapReading is what the trimmer reads of the Go runtime each time.
type heapReading struct {
	gcCycles  uint64 // completed GC cycles so far
	freeBytes uint64 // heap memory free and not yet returned to the system
}

func readHeap() heapReading {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	var r heapReading
	if s[0].Value.Kind() == metrics.KindUint64 {
		r.gcCycles = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		r.freeBytes = s[1].Value.Uint64()
	}
	return r
}

// idleTrimmer hands a burst's garbage back to the system once the daemon
// is quiet. Go keeps freed heap up to its next collection goal (twice the
// live heap), so after 10,000 creates the daemon stays at the size it grew
// to while it sits idle. Each interval with no collection at all (the
// heap is not growing: nothing is being allocated in earnest) and more
// than trimFloor free, it returns the free heap (debug.FreeOSMemory: one
// collection, then the release). A busy daemon collects between two looks
// and is never trimmed. It runs until ctx ends.
type idleTrimmer struct {
	read  func() heapReading
	free  func()
	every <-chan time.Time
	log   *slog.Logger
}

func (t idleTrimmer) run(ctx context.Context) {
	defer func() {
		if v := recover(); v != nil {
			t.log.Error("idle memory trimmer stopped", "panic", v)
		}
	}()
	last := t.read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.every:
		}
		now := t.read()
		if now.gcCycles == last.gcCycles && now.freeBytes > trimFloor {
			t.free()
			now = t.read() // the trim's own collection is not activity
		}
		last = now
	}
}

// trimWhenIdle starts the idle trimmer for the daemon's lifetime (ctx).
func (d *Daemon) trimWhenIdle(ctx context.Context) {
	tick := time.NewTicker(trimInterval)
	go func() {
		defer tick.Stop()
		idleTrimmer{read: readHeap, free: debug.FreeOSMemory, every: tick.C, log: d.log}.run(ctx)
	}()
}
