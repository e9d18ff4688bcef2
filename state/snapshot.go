package state

import (
	"bytes"
	"context"
	"strings"
	"sync"
)

// Snapshotter reads a whole collection again and again, decoding only the
// records whose stored bytes changed since its previous read, for readers
// that list many records often (the daemon's metrics scrapes, every few
// seconds, over thousands of services): reading the stored bytes is cheap,
// decoding JSON is what costs. Safe for concurrent use.
type Snapshotter[T any] struct {
	c    *Collection[T]
	mu   sync.Mutex
	prev map[string]snapshotEntry[T]
}

type snapshotEntry[T any] struct {
	raw []byte
	v   T
	ok  bool // false: the record is damaged
}

// Snapshotter returns a reader of the collection that remembers what it
// decoded.
func (c *Collection[T]) Snapshotter() *Snapshotter[T] {
	return &Snapshotter[T]{c: c, prev: map[string]snapshotEntry[T]{}}
}

// List returns what Collection.List returns: every record that can be read,
// in ascending id order. The records share memory (slices, maps) with the
// snapshotter's cache: read them, never modify them.
func (s *Snapshotter[T]) List(ctx context.Context) ([]T, error) {
	entries, err := s.c.s.List(ctx, s.c.prefix)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]snapshotEntry[T], len(entries))
	out := make([]T, 0, len(entries))
	for _, e := range entries {
		id := strings.TrimPrefix(e.Key, s.c.prefix)
		if strings.Contains(id, "/") {
			continue
		}
		se, seen := s.prev[id]
		if !seen || !bytes.Equal(se.raw, e.Value) {
			v, err := s.c.decode(id, e.Value)
			se = snapshotEntry[T]{raw: bytes.Clone(e.Value), v: v, ok: err == nil}
		}
		next[id] = se
		if se.ok {
			out = append(out, se.v)
		}
	}
	s.prev = next
	return out, nil
}
