package fakeruntime

import (
	"context"

	"aima/runtime"
)

// Logs streams the container's output: the lines selected by opts.Since
// (inclusive) and opts.Tail (<0 all, 0 none), then, with opts.Follow, new
// lines until the process ends. The error channel then holds the end's
// error, if any (ctx's, or errs.Unavailable on a Cut), and is closed.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions) (<-chan runtime.LogLine, <-chan error) {
	lines := make(chan runtime.LogLine)
	errc := make(chan error, 1)
	fail := func(err error) (<-chan runtime.LogLine, <-chan error) {
		errc <- err
		close(errc)
		close(lines)
		return lines, errc
	}
	cut, err := r.enter(ctx, OpLogs)
	if err != nil {
		return fail(err)
	}
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok {
		r.mu.Unlock()
		return fail(notFound(id))
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
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(lines)
		defer close(errc)
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
				if err := send(st, lines, l); err != nil {
					errc <- err
					return
				}
			}
			if ended {
				return
			}
			if err := wait(st, wake); err != nil {
				errc <- err
				return
			}
		}
	}()
	return lines, errc
}
