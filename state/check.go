package state

import (
	"context"
	"sync"

	"aima/errs"
)

// errClosed is what every backend returns once Close has been called, so
// callers racing a shutdown see a retryable "unavailable" rather than a panic.
var errClosed = errs.New(errs.Unavailable, "state: store is closed")

// checkOp is the common precondition of every Store method: a live context
// and a non-empty key. Context errors are returned unwrapped so that
// errs.KindOf maps them to Canceled / DeadlineExceeded.
func checkOp(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errs.New(errs.InvalidArgument, "state: empty key")
	}
	return nil
}

// conflict wraps ErrConflict with the operation and key for context.
func conflict(op, key string) error {
	return errs.Wrap(errs.Conflict, ErrConflict, "%s %q", op, key)
}

// revMismatch reports whether a write that expects expectRev must be
// refused because the key's current revision is cur (0 = absent).
func revMismatch(expectRev, cur uint64) bool {
	return expectRev != AnyRev && expectRev != cur
}

// clone returns a non-nil copy of b: stored values never alias caller
// memory, and an existing empty value reads back as []byte{} on every
// backend.
func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// storeGuard is the lock of an in-process store (memory, gokv) and whether
// it was closed: every operation checks its preconditions, takes the lock
// (shared to read) and fails on a closed store.
type storeGuard struct {
	mu     sync.RWMutex
	closed bool
}

// enter is that prologue: pre is the operation's precondition check
// (checkOp or the store's own), returned as it is when it fails; then the
// lock, exclusive when write is set, released again on a closed store. On
// success the caller holds the lock and releases it (mu.Unlock or
// mu.RUnlock).
func (g *storeGuard) enter(pre error, write bool) error {
	if pre != nil {
		return pre
	}
	l := g.mu.RLocker()
	if write {
		l = &g.mu
	}
	l.Lock()
	if g.closed {
		l.Unlock()
		return errClosed
	}
	return nil
}
