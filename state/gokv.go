package state

import (
	"context"
	"slices"
	"strings"

	"github.com/philippgille/gokv"

	"aima/errs"
)

// gokvIndexKey is the reserved key under which the adapter keeps its sorted
// key set and revision counter; callers may not use it.
const gokvIndexKey = "__aima_keys"

// gokvIndex is the adapter's bookkeeping record: gokv has no iteration, so
// List walks this sorted key set, and Seq is the last revision handed out
// (persisted so revisions stay unique across restarts).
type gokvIndex struct {
	Seq  uint64   `json:"seq"`
	Keys []string `json:"keys"`
}

// gokvRecord is how a value is stored in gokv: wrapped with its revision,
// since gokv has no compare-and-swap of its own.
type gokvRecord struct {
	Rev   uint64 `json:"rev"`
	Value []byte `json:"value"`
}

// gokvStore adapts a philippgille/gokv store (Redis, Postgres, file, ...)
// to Store. gokv offers neither listing nor compare-and-swap, so:
//
//   - every write is serialised by a process-local mutex, which makes the
//     revision check atomic only within this process: the adapter is valid
//     for a single aima daemon per backing store;
//   - an index record (gokvIndexKey) holds the sorted key set and the
//     revision counter. A Put writes the index before the value and a Delete
//     removes the value before the index, so after a crash the index is at
//     worst a superset of the live keys; List skips keys without a value.
//
// Each Put rewrites the whole index, so writes cost O(number of keys): fine
// for aima's hundreds of records, not for a bulk data store. Durability is
// whatever the gokv backend gives (the gokv file store does not fsync).
type gokvStore struct {
	kv      gokv.Store
	onClose func() error // extra cleanup, e.g. releasing a directory lock

	storeGuard
}

// NewGokv wraps any gokv store as a Store so aima can run on backends gokv
// already supports. The adapter takes ownership: Close closes s. Only one
// aima process may use a given backing store at a time (see gokvStore).
func NewGokv(s gokv.Store) Store {
	return &gokvStore{kv: s}
}

// checkKey adds the adapter's reserved key to the common preconditions.
func (s *gokvStore) checkKey(ctx context.Context, key string) error {
	if err := checkOp(ctx, key); err != nil {
		return err
	}
	if key == gokvIndexKey {
		return errs.New(errs.InvalidArgument, "state: key %q is reserved", key)
	}
	return nil
}

// backendErr classifies a failure of the underlying gokv store: the backend
// is typically remote or on disk, so its failures are "unavailable".
func backendErr(err error, op, key string) error {
	return errs.Wrap(errs.Unavailable, err, "state store (gokv): %s %q", op, key)
}

// getRecord reads key's record; found is false when the key is absent.
func (s *gokvStore) getRecord(key string) (rec gokvRecord, found bool, err error) {
	found, err = s.kv.Get(key, &rec)
	if err != nil {
		return gokvRecord{}, false, backendErr(err, "get", key)
	}
	if found && rec.Rev == 0 {
		return gokvRecord{}, false, errs.New(errs.Internal, "state store (gokv): corrupt record %q (no revision)", key)
	}
	return rec, found, nil
}

// getIndex reads the index record, which is absent in a fresh store.
func (s *gokvStore) getIndex() (gokvIndex, error) {
	var idx gokvIndex
	if _, err := s.kv.Get(gokvIndexKey, &idx); err != nil {
		return gokvIndex{}, backendErr(err, "get", gokvIndexKey)
	}
	return idx, nil
}

func (s *gokvStore) setIndex(idx gokvIndex) error {
	if idx.Keys == nil {
		idx.Keys = []string{}
	}
	if err := s.kv.Set(gokvIndexKey, idx); err != nil {
		return backendErr(err, "set", gokvIndexKey)
	}
	return nil
}

func (s *gokvStore) Get(ctx context.Context, key string) (Entry, bool, error) {
	if err := s.enter(s.checkKey(ctx, key), false); err != nil {
		return Entry{}, false, err
	}
	defer s.mu.RUnlock()
	rec, found, err := s.getRecord(key)
	if err != nil || !found {
		return Entry{}, false, err
	}
	return Entry{Key: key, Value: clone(rec.Value), Rev: rec.Rev}, true, nil
}

func (s *gokvStore) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := s.enter(ctx.Err(), false); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	idx, err := s.getIndex()
	if err != nil {
		return nil, err
	}
	out := []Entry{}
	i, _ := slices.BinarySearch(idx.Keys, prefix)
	for ; i < len(idx.Keys) && strings.HasPrefix(idx.Keys[i], prefix); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := idx.Keys[i]
		rec, found, err := s.getRecord(k)
		if err != nil {
			return nil, err
		}
		if found { // a missing value is a leftover of an interrupted write
			out = append(out, Entry{Key: k, Value: clone(rec.Value), Rev: rec.Rev})
		}
	}
	return out, nil
}

func (s *gokvStore) Put(ctx context.Context, key string, val []byte, expectRev uint64) (uint64, error) {
	if err := s.enter(s.checkKey(ctx, key), true); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	cur, _, err := s.getRecord(key)
	if err != nil {
		return 0, err
	}
	if revMismatch(expectRev, cur.Rev) {
		return 0, conflict("put", key)
	}
	idx, err := s.getIndex()
	if err != nil {
		return 0, err
	}
	idx.Seq++
	if i, ok := slices.BinarySearch(idx.Keys, key); !ok {
		idx.Keys = slices.Insert(idx.Keys, i, key)
	}
	// Index first: a crash in between leaves a dangling key, never a
	// value that List cannot see, and the revision is never reused.
	if err := s.setIndex(idx); err != nil {
		return 0, err
	}
	if err := s.kv.Set(key, gokvRecord{Rev: idx.Seq, Value: clone(val)}); err != nil {
		return 0, backendErr(err, "set", key)
	}
	return idx.Seq, nil
}

func (s *gokvStore) Delete(ctx context.Context, key string, expectRev uint64) error {
	if err := s.enter(s.checkKey(ctx, key), true); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cur, found, err := s.getRecord(key)
	if err != nil {
		return err
	}
	if revMismatch(expectRev, cur.Rev) { // absent: rev 0 matches 0 and AnyRev
		return conflict("delete", key)
	}
	if !found {
		return nil
	}
	// Value first: a crash in between leaves a dangling index entry, which
	// List skips.
	if err := s.kv.Delete(key); err != nil {
		return backendErr(err, "delete", key)
	}
	idx, err := s.getIndex()
	if err != nil {
		return err
	}
	if i, ok := slices.BinarySearch(idx.Keys, key); ok {
		idx.Keys = slices.Delete(idx.Keys, i, i+1)
		return s.setIndex(idx)
	}
	return nil
}

// Close closes the wrapped gokv store (once) and runs any extra cleanup.
func (s *gokvStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.kv.Close()
	if s.onClose != nil {
		if cerr := s.onClose(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return errs.Wrap(errs.Internal, err, "close state store (gokv)")
	}
	return nil
}
