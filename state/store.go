// Package state holds aima's persistent state behind a small key-value
// interface with listing by prefix and atomic (revision-checked) updates.
// The embedded default is bbolt in the data dir; an in-memory store serves
// tests, and any gokv store can be plugged in as a backend.
package state

import (
	"context"

	"aima/errs"
)

// Entry is one stored value with its revision. Rev 0 means "absent".
type Entry struct {
	Key   string
	Value []byte
	Rev   uint64
}

// AnyRev, passed as expectRev, skips the revision check.
const AnyRev = ^uint64(0)

// ErrConflict is returned by Put and Delete when expectRev does not match.
// Backends wrap it with the key for context, so test for it with errors.Is
// (or errs.KindOf(err) == errs.Conflict).
var ErrConflict = errs.New(errs.Conflict, "state: revision conflict")

// Store is the KV interface every backend implements. Keys are UTF-8 strings
// such as "services/svc-1a2b3c"; List returns entries in ascending key order.
// Put with expectRev 0 means create-if-absent.
//
// Revisions are opaque, non-zero and strictly increasing per store; a
// revision is never reused, so a stale expectRev cannot match a key that was
// deleted and re-created in between (no ABA). The empty key is invalid
// (errs.InvalidArgument). A closed store fails with errs.Unavailable.
// Values handed in and out are copies: callers may keep and modify them.
type Store interface {
	// Get returns the entry for key and whether it exists.
	Get(ctx context.Context, key string) (Entry, bool, error)
	// List returns every entry whose key starts with prefix ("" lists all),
	// in ascending byte order of the keys.
	List(ctx context.Context, prefix string) ([]Entry, error)
	// Put stores val under key if the key's current revision equals
	// expectRev (0 = must be absent, AnyRev = unconditional) and returns the
	// new revision; otherwise it fails with ErrConflict and writes nothing.
	Put(ctx context.Context, key string, val []byte, expectRev uint64) (uint64, error)
	// Delete removes key if its current revision equals expectRev (AnyRev =
	// unconditional). Deleting an absent key is a no-op when expectRev is 0
	// or AnyRev, and ErrConflict otherwise.
	Delete(ctx context.Context, key string, expectRev uint64) error
	// Close releases the backend (file locks, connections). It is safe to
	// call more than once; later calls on the store fail with
	// errs.Unavailable.
	Close() error
}
