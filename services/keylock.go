package services

import (
	"context"
	"sync"
)

// keyLocks are mutexes named by a key (a swap group) that a waiter can
// give up on: each is a one-slot channel, so taking it selects on the
// caller's context. An entry exists only while someone holds or waits for
// its lock, so keys that come and go (groups of deleted services) leave
// nothing behind.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	slot chan struct{}
	refs int // holders and waiters
}

func newKeyLocks() *keyLocks { return &keyLocks{m: map[string]*keyLock{}} }

// lock takes key's lock, or gives up when ctx ends (returning its error).
// The returned function releases the lock; call it exactly once.
func (k *keyLocks) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	l, ok := k.m[key]
	if !ok {
		l = &keyLock{slot: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	if ctx.Err() != nil {
		k.drop(key, l)
		return nil, context.Cause(ctx)
	}
	select {
	case l.slot <- struct{}{}:
		var once sync.Once
		return func() {
			once.Do(func() {
				<-l.slot
				k.drop(key, l)
			})
		}, nil
	case <-ctx.Done():
		k.drop(key, l)
		return nil, context.Cause(ctx)
	}
}

// drop ends one holder's or waiter's interest in l.
func (k *keyLocks) drop(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(k.m, key)
	}
}

// len is how many keys have a holder or a waiter.
func (k *keyLocks) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
