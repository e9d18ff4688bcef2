package state

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
)

// recordCache is a collection's in-memory copy of its records: each
// decoded, with its JSON encoding, plus the damaged ones. It is filled from
// the store on first use and then kept by the collection's own writes, each
// applied to the store first and to the cache only once the store took it,
// so the store stays the source of truth and the cache never holds what the
// store does not. It is only correct while the collection is the one writer
// of its prefix (the daemon holds its store exclusively, and one collection
// per prefix writes it).
//
// What it buys: with 10,000 service records a list decoded every record per
// call (about 25 µs each) and the front-end encoded it again; from the
// cache a list is a sort of pointers, and the encodings are written out as
// they are. What it costs: the records twice in memory (decoded and
// encoded, ~1 KiB per service record), and writes of one collection go one
// at a time (the embedded store serialises them anyway).
//
// A cached record is never modified: a write replaces it with a new one.
// So readers that only read (ScanShared) get pointers to the cached
// records and copy nothing, which keeps a list of 10,000 records from
// making megabytes of garbage on every call.
type recordCache[T any] struct {
	wmu     sync.Mutex // serialises writes (store, then cache)
	mu      sync.RWMutex
	loaded  bool
	recs    map[string]cachedRecord[T]
	damaged map[string]damagedRec
	ids     []string // ascending; nil when it must be rebuilt
}

type damagedRec struct {
	why   error // why it cannot be read
	bytes int
}

type cachedRecord[T any] struct {
	v   *T // never modified once cached
	raw json.RawMessage
}

// WithCache turns on the collection's record cache (see recordCache) and
// returns the collection. Use it only for a collection that is the one
// writer of its prefix.
func (c *Collection[T]) WithCache() *Collection[T] {
	c.cache = &recordCache[T]{}
	return c
}

// load fills the cache from the store once.
func (c *Collection[T]) load(ctx context.Context) error {
	rc := c.cache
	rc.mu.RLock()
	loaded := rc.loaded
	rc.mu.RUnlock()
	if loaded {
		return nil
	}
	entries, err := c.s.List(ctx, c.prefix)
	if err != nil {
		return err
	}
	recs, damaged := map[string]cachedRecord[T]{}, map[string]damagedRec{}
	err = c.decodeAll(entries, func(id string, v T) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		recs[id] = cachedRecord[T]{v: &v, raw: raw}
		return nil
	}, func(id string, why error, size int) {
		damaged[id] = damagedRec{why: why, bytes: size}
	})
	if err != nil {
		return err
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.loaded {
		rc.recs, rc.damaged, rc.loaded, rc.ids = recs, damaged, true, nil
	}
	return nil
}

// cacheGet answers Get from the cache.
func (c *Collection[T]) cacheGet(ctx context.Context, id string) (T, error) {
	var zero T
	if err := c.load(ctx); err != nil {
		return zero, err
	}
	rc := c.cache
	rc.mu.RLock()
	defer rc.mu.RUnlock()
	if r, ok := rc.recs[id]; ok {
		return *r.v, nil
	}
	if d, ok := rc.damaged[id]; ok {
		return zero, c.damaged(id, d.why)
	}
	return zero, c.notFound(id)
}

// cacheScan answers ScanShared from the cache: the cached records
// themselves, in ascending id order.
func (c *Collection[T]) cacheScan(ctx context.Context) ([]*T, []json.RawMessage, []Damaged, error) {
	if err := c.load(ctx); err != nil {
		return nil, nil, nil, err
	}
	rc := c.cache
	rc.mu.Lock() // ids may be rebuilt
	defer rc.mu.Unlock()
	if rc.ids == nil {
		rc.ids = make([]string, 0, len(rc.recs))
		for id := range rc.recs {
			rc.ids = append(rc.ids, id)
		}
		sort.Strings(rc.ids)
	}
	vals, raws := make([]*T, len(rc.ids)), make([]json.RawMessage, len(rc.ids))
	for i, id := range rc.ids {
		r := rc.recs[id]
		vals[i], raws[i] = r.v, r.raw
	}
	return vals, raws, rc.damagedList(c.noun), nil
}

// damagedList lists the damaged records in ascending id order; rc.mu must
// be held.
func (rc *recordCache[T]) damagedList(noun string) []Damaged {
	bad := make([]Damaged, 0, len(rc.damaged))
	for id, d := range rc.damaged {
		bad = append(bad, Damaged{Kind: noun, ID: id, Error: d.why.Error(), Bytes: d.bytes})
	}
	sort.Slice(bad, func(i, j int) bool { return bad[i].ID < bad[j].ID })
	return bad
}

// cacheDamaged answers Damaged from the cache, copying no record.
func (c *Collection[T]) cacheDamaged(ctx context.Context) ([]Damaged, error) {
	if err := c.load(ctx); err != nil {
		return nil, err
	}
	c.cache.mu.RLock()
	defer c.cache.mu.RUnlock()
	return c.cache.damagedList(c.noun), nil
}

// write runs a store write with the cache's write lock held (so writes
// reach the cache in the order the store took them) and, when the store
// took it, applies it to the cache: put is the stored encoding of id, or
// nil for a delete.
func (c *Collection[T]) write(ctx context.Context, id string, do func() (put []byte, err error)) error {
	if c.cache == nil {
		_, err := do()
		return err
	}
	rc := c.cache
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	if err := c.load(ctx); err != nil {
		return err
	}
	put, err := do()
	if err != nil {
		return err
	}
	var rec cachedRecord[T]
	if put != nil {
		// A fresh copy: the caller keeps the value it passed in.
		v, err := c.decode(id, put)
		if err != nil {
			return err
		}
		rec.v, rec.raw = &v, put
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	_, existed := rc.recs[id]
	delete(rc.damaged, id)
	if put == nil {
		delete(rc.recs, id)
	} else {
		rc.recs[id] = rec
	}
	if existed != (put != nil) {
		rc.ids = nil
	}
	return nil
}
