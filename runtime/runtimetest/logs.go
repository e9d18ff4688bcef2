// Package runtimetest helps tests of runtime.Runtime implementations and
// of their users.
package runtimetest

import (
	"context"

	"aima/runtime"
)

// LogChan runs rt.Logs in a goroutine of its own and hands its lines over a
// channel, for a test that reads a followed log while it does other things
// (cut the engine, cancel ctx). lines is closed when Logs returns; errc then
// holds its result and is closed. Read lines until it is closed, or cancel
// ctx.
func LogChan(ctx context.Context, rt runtime.Runtime, id string, opts runtime.LogOptions) (lines <-chan runtime.LogLine, errc <-chan error) {
	lc := make(chan runtime.LogLine, 64)
	ec := make(chan error, 1)
	go func() {
		defer close(ec)
		defer close(lc)
		ec <- rt.Logs(ctx, id, opts, func(l runtime.LogLine) error {
			select {
			case lc <- l:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return lc, ec
}

// Collect reads a log to its end (use it without Follow, or with a ctx
// that ends) and returns its lines and Logs' result.
func Collect(ctx context.Context, rt runtime.Runtime, id string, opts runtime.LogOptions) ([]runtime.LogLine, error) {
	var out []runtime.LogLine
	err := rt.Logs(ctx, id, opts, func(l runtime.LogLine) error {
		out = append(out, l)
		return nil
	})
	return out, err
}
