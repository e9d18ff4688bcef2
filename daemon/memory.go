package daemon

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"aima/internal/contained"
)

// The daemon's memory policy (docs/decisions.md, "The daemon's memory
// policy"). A daemon keeps what it manages in memory for as long as it
// runs, and at rest its garbage is small and steady (health probes, the
// watches), so it trades a little collector CPU for a heap that stays near
// what it holds, and hands back to the system the pages a burst left.
// GOGC and GOMEMLIMIT in the environment win over both halves.

// gcPercent is the collector's goal for `aima start`: the heap may grow by
// half its live size (and stacks) before a collection, where Go's default,
// 100, lets it double. Measured at rest with 1,000 services on
// Kubernetes: docs/performance.md.
const gcPercent = 50

// memoryPolicy applies the policy to this process (`aima start`; tests'
// in-process daemons keep Go's defaults) until the returned stop is called.
func memoryPolicy(ctx context.Context, log *slog.Logger) (stop func()) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		contained.Run(log, "memory policy (Go's defaults apply)", func() { governMemory(ctx, log) })
	}()
	return func() { cancel(); <-done }
}

// How the soft memory limit follows what the heap needs. The margin keeps
// the limit from pacing the collector: with a 32nd and 4 MiB instead, at
// 1,000 services the RSS was 114 MiB but the collector ran 186 times a
// minute at rest, 37 % of a core (docs/performance.md).
var governEvery = 5 * time.Second // a variable for the tests

const (
	limitMargin  = 8 << 20 // on top of an eighth of the need
	limitMinimum = 48 << 20
)

// governMemory runs until ctx ends, unless the operator set GOMEMLIMIT.
// Go's collector paces the heap's objects (GOGC), but what the process
// keeps is more: after a burst (a thousand starts, a flood of requests)
// the pages it freed stay mapped, because the scavenger measures its
// target from the spans in use, which the burst left scattered with live
// objects. Measured at 1,000 services: 30–60 MiB of freed heap and stack
// spans kept for good (docs/performance.md). So every few seconds the
// daemon sets Go's soft memory limit a margin above what the heap needs
// at its next peak (the collector's goal, the spans' unused part, the
// goroutines' stacks and the runtime's own), which is never what paces the collector (its
// goal stays GOGC's) but makes the runtime return the rest at once. The
// limit follows the need up and down; it ends where the daemon ends.
func governMemory(ctx context.Context, log *slog.Logger) {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return
	}
	defer debug.SetMemoryLimit(math.MaxInt64)
	names := []string{
		"/gc/heap/goal:bytes",
		"/memory/classes/heap/unused:bytes",
		"/memory/classes/total:bytes",
		"/memory/classes/heap/released:bytes",
		"/memory/classes/heap/objects:bytes",
		"/memory/classes/heap/free:bytes",
		"/memory/classes/heap/stacks:bytes",
		"/gc/scan/stack:bytes",
		"/sched/goroutines:goroutines",
	}
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	t := time.NewTicker(governEvery)
	defer t.Stop()
	last := int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(s)
		var v [9]uint64
		for i := range s {
			if s[i].Value.Kind() != metrics.KindUint64 {
				return // a runtime without these figures: leave Go's defaults
			}
			v[i] = s[i].Value.Uint64()
		}
		goal, unused, total, released, objects, free, stacks, scanned, goroutines := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]
		// Beside the heap and the stacks: the runtime's metadata, buffers.
		other := total - released - objects - unused - free - stacks
		// The stacks the goroutines use (each at least 8 KiB), not the
		// stack spans the runtime keeps after a burst of goroutines:
		// those go back when it frees them.
		need := goal + unused + other + scanned + goroutines*8<<10
		limit := max(int64(need+need/8+limitMargin), limitMinimum)
		debug.SetMemoryLimit(limit)
		if d := limit - last; d > 16<<20 || d < -16<<20 {
			log.Debug("memory limit follows the heap", "limit_mib", limit>>20, "gc_goal_mib", goal>>20)
			last = limit
		}
	}
}
