// Package contained keeps a panic in one of the daemon's long-lived loops
// (the container event watcher, the liveness loop, the idle-release loop)
// or in a hook it calls from the loop's piece of work, so a bug met once
// ends that piece of work, is logged with its stack, and never takes the
// daemon down nor leaves it without the loop for good.
package contained

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// Run runs f and reports whether it panicked; the panic is logged with its
// stack, as what.
func Run(log *slog.Logger, what string, f func()) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("panic recovered: "+what, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			panicked = true
		}
	}()
	f()
	return false
}

// restartDelay is how long a loop that panicked waits before it runs
// again, so a panic on every run costs a log line a second, not a core.
const restartDelay = time.Second

// KeepRunning runs loop until it returns or ctx ends, running it again
// restartDelay after a panic (logged by Run); restarted tells the loop it
// runs again after one.
func KeepRunning(ctx context.Context, log *slog.Logger, what string, loop func(restarted bool)) {
	for restarted := false; ; restarted = true {
		if !Run(log, what, func() { loop(restarted) }) {
			return
		}
		t := time.NewTimer(restartDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
