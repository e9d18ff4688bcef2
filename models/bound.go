package models

import (
	"context"
	"time"

	"aima/errs"
)

// fsSlots bounds how many model inspections touch the filesystem at once.
// Inspection never blocks on a special file (see OpenRegular), but a hung
// filesystem (a stale network mount) can still stall a stat or a read; then
// at most this many OS threads are held, and further requests wait for a
// slot only until their deadline.
var fsSlots = make(chan struct{}, 8)

// onDisk runs fn, filesystem work on a model path, under a deadline: ctx
// bounded by limit. It returns when fn does, or when the deadline passes
// (errs.DeadlineExceeded naming what) or ctx is cancelled, whichever comes
// first, so no request waits on a stalled filesystem without a bound. fn
// gets the bounded context and must stop when it ends; if the filesystem
// holds it in a system call, it finishes in the background and frees its
// slot then.
func onDisk[T any](ctx context.Context, limit time.Duration, what string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	select {
	case fsSlots <- struct{}{}:
	case <-ctx.Done():
		return zero, boundErr(parent, limit, what)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-fsSlots }()
		defer func() {
			// A panic reading a model's files (a bug met on a hostile
			// file) is this request's internal error, not the daemon's end.
			if p := recover(); p != nil {
				done <- result{err: errs.New(errs.Internal, "%s: internal error: %v", what, p)}
			}
		}()
		v, err := fn(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && ctx.Err() != nil {
			return zero, boundErr(parent, limit, what)
		}
		return r.v, r.err
	case <-ctx.Done():
		return zero, boundErr(parent, limit, what)
	}
}

// boundErr explains why onDisk gave up: the caller's own end (parent)
// passes through; the bound becomes a deadline_exceeded that says what
// stalled.
func boundErr(parent context.Context, limit time.Duration, what string) error {
	if parent.Err() != nil {
		return context.Cause(parent)
	}
	return errs.New(errs.DeadlineExceeded, "%s did not finish within %s (a slow or hung filesystem?)", what, limit)
}
