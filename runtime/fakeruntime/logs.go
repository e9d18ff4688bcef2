package fakeruntime

import (
	"context"

	"aima/runtime"
)

// Logs hands each the container's output: the lines selected by opts.Since
// (inclusive) and opts.Tail (<0 all, 0 none), then, with opts.Follow, new
// lines until the process ends. It returns the end's error, if any (ctx's,
// errs.Unavailable on a Cut, or each's). opts.OnWait is called before each
// wait for new lines.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions, each func(runtime.LogLine) error) error {
	cut, err := r.enter(ctx, OpLogs)
	if err != nil {
		return err
	}
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok {
		r.mu.Unlock()
		return notFound(id)
	}
	first := 0
	if !opts.Since.IsZero() {
		for first < len(c.logs) && c.logs[first].Time.Before(opts.Since) {
			first++
		}
	}
	if opts.Tail >= 0 {
		first = max(first, len(c.logs)-opts.Tail)
	}
	r.mu.Unlock()
	st := r.stream(ctx, cut, "logs of container "+id)
	next := first
	for {
		r.mu.Lock()
		batch := append([]runtime.LogLine(nil), c.logs[next:]...)
		next = len(c.logs)
		_, exists := r.containers[id]
		ended := !opts.Follow || !c.running() || !exists
		wake := c.logWake
		r.mu.Unlock()
		for _, l := range batch {
			if err := st.ended(); err != nil {
				return err
			}
			if err := each(l); err != nil {
				return err
			}
		}
		if ended {
			return nil
		}
		if opts.OnWait != nil {
			opts.OnWait()
		}
		if err := wait(st, wake); err != nil {
			return err
		}
	}
}
