package state

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"aima/errs"
)

// maxUpdateAttempts bounds Update's retry loop. A conflict means another
// writer succeeded, so a caller only loses a round to real progress; 100
// rounds is far beyond normal contention and stops a livelock from spinning
// forever.
const maxUpdateAttempts = 100

// Update atomically applies fn to the current value of key and stores the
// result, returning the new revision. It is an optimistic read-modify-write:
// read, call fn, Put with the read revision, and on ErrConflict start over
// with a fresh read. fn therefore may run several times and must depend only
// on its arguments; exists is false (and old nil) when the key is absent, in
// which case the write is a create. An error from fn aborts the update with
// nothing written and is returned unchanged. Update gives up with
// errs.Conflict after maxUpdateAttempts conflicting rounds and honours ctx
// between rounds.
func Update(ctx context.Context, s Store, key string, fn func(old []byte, exists bool) ([]byte, error)) (newRev uint64, err error) {
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return 0, err
			}
		}
		e, exists, err := s.Get(ctx, key)
		if err != nil {
			return 0, err
		}
		var old []byte
		if exists {
			old = e.Value
		}
		nv, err := fn(old, exists)
		if err != nil {
			return 0, err
		}
		rev, err := s.Put(ctx, key, nv, e.Rev) // e.Rev is 0 when absent: create
		if !errors.Is(err, ErrConflict) {
			return rev, err
		}
	}
	return 0, errs.Wrap(errs.Conflict, ErrConflict, "update %q: gave up after %d conflicting attempts", key, maxUpdateAttempts)
}

// backoff spreads out retries after a conflict: the first few retry at once
// (the usual case is one competing writer), then a short random pause that
// grows with the attempt number (capped at 10 ms) breaks up herds of writers.
// It returns ctx's error if ctx ends first.
func backoff(ctx context.Context, attempt int) error {
	if attempt < 3 {
		return ctx.Err()
	}
	limit := min(time.Duration(attempt)*100*time.Microsecond, 10*time.Millisecond)
	t := time.NewTimer(rand.N(limit) + time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Create stores val under key only if the key is absent and returns the new
// revision; an existing key fails with errs.Conflict (wrapping ErrConflict).
// It is Put with expectRev 0, named for readability at call sites.
func Create(ctx context.Context, s Store, key string, val []byte) (uint64, error) {
	rev, err := s.Put(ctx, key, val, 0)
	if errors.Is(err, ErrConflict) {
		return 0, errs.Wrap(errs.Conflict, ErrConflict, "create %q: already exists", key)
	}
	return rev, err
}
