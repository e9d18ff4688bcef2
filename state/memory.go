package state

import (
	"context"
	"sort"
	"strings"
)

// memEntry is one stored value with its revision.
type memEntry struct {
	val []byte
	rev uint64
}

// memoryStore is a map guarded by a mutex. It gives the exact Store
// semantics of the durable backends without any I/O, so domain tests run
// fast and deterministically.
type memoryStore struct {
	storeGuard
	m   map[string]memEntry
	seq uint64 // last revision handed out; revisions are never reused
}

// NewMemory returns an empty in-process Store. Its contents vanish with the
// process: use it in tests and for throw-away daemons ("memory" in Open).
func NewMemory() Store {
	return &memoryStore{m: make(map[string]memEntry)}
}

func (s *memoryStore) Get(ctx context.Context, key string) (Entry, bool, error) {
	if err := s.enter(checkOp(ctx, key), false); err != nil {
		return Entry{}, false, err
	}
	defer s.mu.RUnlock()
	e, ok := s.m[key]
	if !ok {
		return Entry{}, false, nil
	}
	return Entry{Key: key, Value: clone(e.val), Rev: e.rev}, true, nil
}

func (s *memoryStore) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := s.enter(ctx.Err(), false); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := []Entry{}
	for k, e := range s.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Entry{Key: k, Value: clone(e.val), Rev: e.rev})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *memoryStore) Put(ctx context.Context, key string, val []byte, expectRev uint64) (uint64, error) {
	if err := s.enter(checkOp(ctx, key), true); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if revMismatch(expectRev, s.m[key].rev) {
		return 0, conflict("put", key)
	}
	s.seq++
	s.m[key] = memEntry{val: clone(val), rev: s.seq}
	return s.seq, nil
}

func (s *memoryStore) Delete(ctx context.Context, key string, expectRev uint64) error {
	if err := s.enter(checkOp(ctx, key), true); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if revMismatch(expectRev, s.m[key].rev) { // absent: rev 0 matches 0 and AnyRev
		return conflict("delete", key)
	}
	delete(s.m, key)
	return nil
}

func (s *memoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.m = nil
	return nil
}
