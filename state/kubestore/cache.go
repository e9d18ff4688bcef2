package kubestore

import (
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"aima/state"
)

// watchCache is the store's copy of every record, kept by a watch of the
// API server (it implements client-go's ReflectorStore) and by the store's
// own writes, each applied as soon as the API server took it, so a read
// after a write sees it. Reads (Get, List) are answered from memory, as
// fast as the embedded store's; writes always go to the API server, with
// the resourceVersion they expect.
//
// The watch and the local writes race: an entry is only ever replaced by
// one with a higher revision, and a key this store deleted keeps a
// tombstone (the last revision it had) until the watch reports the
// deletion, so a late watch event never brings back what was removed.
type watchCache struct {
	mu     sync.RWMutex
	dirs   map[string]map[string]state.Entry // key up to its last "/" → key → entry
	tombs  map[string]uint64
	synced chan struct{} // closed at the first full list
	once   sync.Once
}

func newWatchCache() *watchCache {
	return &watchCache{dirs: map[string]map[string]state.Entry{}, tombs: map[string]uint64{}, synced: make(chan struct{})}
}

func dirOf(key string) string { return key[:strings.LastIndexByte(key, '/')+1] }

// getLocked returns the entry of key; c.mu must be held.
func (c *watchCache) getLocked(key string) (state.Entry, bool) {
	e, ok := c.dirs[dirOf(key)][key]
	return e, ok
}

func (c *watchCache) setLocked(e state.Entry) {
	d := dirOf(e.Key)
	m := c.dirs[d]
	if m == nil {
		m = map[string]state.Entry{}
		c.dirs[d] = m
	}
	m[e.Key] = e
}

func (c *watchCache) removeLocked(key string) {
	d := dirOf(key)
	delete(c.dirs[d], key)
	if len(c.dirs[d]) == 0 {
		delete(c.dirs, d)
	}
}

// get returns a copy of key's entry.
func (c *watchCache) get(key string) (state.Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.getLocked(key)
	e.Value = slices.Clone(e.Value)
	return e, ok
}

// list returns copies of the entries under prefix in ascending key order.
func (c *watchCache) list(prefix string) []state.Entry {
	c.mu.RLock()
	out := []state.Entry{}
	for d, m := range c.dirs {
		whole := strings.HasPrefix(d, prefix)
		if !whole && !strings.HasPrefix(prefix, d) {
			continue
		}
		for k, e := range m {
			if whole || strings.HasPrefix(k, prefix) {
				out = append(out, e)
			}
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b state.Entry) int { return strings.Compare(a.Key, b.Key) })
	for i := range out {
		out[i].Value = slices.Clone(out[i].Value)
	}
	return out
}

// len is the number of records.
func (c *watchCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, m := range c.dirs {
		n += len(m)
	}
	return n
}

// put applies a write the API server took (or a record it reported)
// unless the cache already has that revision or a newer one.
func (c *watchCache) put(e state.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(e)
}

func (c *watchCache) putLocked(e state.Entry) {
	if cur, ok := c.getLocked(e.Key); ok && cur.Rev >= e.Rev {
		return
	}
	if t, ok := c.tombs[e.Key]; ok {
		if e.Rev <= t {
			return
		}
		delete(c.tombs, e.Key)
	}
	c.setLocked(e)
}

// remove applies a delete this store made of key at revision rev (the
// last it had): later reports of rev or older are stale.
func (c *watchCache) remove(key string, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.getLocked(key); ok {
		if cur.Rev > rev {
			return // re-created since
		}
		c.removeLocked(key)
	}
	c.tombs[key] = max(c.tombs[key], rev)
}

// The ReflectorStore side: what the watch reports.

func (c *watchCache) Add(obj any) error { return c.Update(obj) }
func (c *watchCache) Resync() error     { return nil }
func (c *watchCache) Update(obj any) error {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if e, ok := entryOf(u); ok {
			c.put(e)
		}
	}
	return nil
}

// Delete applies a deletion the watch reports; the object carries the
// revision of the deletion.
func (c *watchCache) Delete(obj any) error {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	e, ok := entryOf(u)
	if !ok {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.getLocked(e.Key); ok && cur.Rev <= e.Rev {
		c.removeLocked(e.Key)
	}
	if t, ok := c.tombs[e.Key]; ok && t <= e.Rev {
		delete(c.tombs, e.Key)
	}
	return nil
}

// Replace takes a full list at resourceVersion rv: entries written here
// after it are kept, the others are what the list says.
func (c *watchCache) Replace(objs []any, rv string) error {
	listRev, err := parseRev(rv)
	if err != nil {
		listRev = state.AnyRev // no revision: the list is all there is
	}
	c.mu.Lock()
	old := c.dirs
	c.dirs = map[string]map[string]state.Entry{}
	for _, m := range old {
		for _, e := range m {
			if e.Rev > listRev {
				c.setLocked(e)
			}
		}
	}
	for k, t := range c.tombs {
		if t <= listRev {
			delete(c.tombs, k)
		}
	}
	for _, obj := range objs {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			if e, ok := entryOf(u); ok {
				c.putLocked(e)
			}
		}
	}
	c.mu.Unlock()
	c.once.Do(func() { close(c.synced) })
	return nil
}
