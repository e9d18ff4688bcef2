// Package keylock is mutexes named by a key (a service, a swap group) that
// a waiter can give up on: the service lifecycle serialises the operations
// of each service with them, the serving layer the swaps of each swap
// group.
package keylock

import (
	"context"
	"sync"
)

// Locks are mutexes named by a key that a waiter can give up on: each is
// a one-slot channel, so taking it selects on the caller's context. An
// entry exists only while someone holds or waits for its lock, so keys
// that come and go (deleted services, their groups) leave nothing behind.
// The zero value is not usable: call New.
type Locks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	slot chan struct{}
	refs int // holders and waiters
}

// New returns a set of keyed locks, none held.
func New() *Locks { return &Locks{m: map[string]*keyLock{}} }

// Lock takes key's lock, or gives up when ctx ends (returning its cause).
// The returned function releases the lock; calling it again does nothing.
func (k *Locks) Lock(ctx context.Context, key string) (func(), error) {
	l := k.ref(key)
	if ctx.Err() != nil {
		k.drop(key, l)
		return nil, context.Cause(ctx)
	}
	select {
	case l.slot <- struct{}{}:
		return k.unlocker(key, l), nil
	case <-ctx.Done():
		k.drop(key, l)
		return nil, context.Cause(ctx)
	}
}

// TryLock takes key's lock if it is free at once.
func (k *Locks) TryLock(key string) (func(), bool) {
	l := k.ref(key)
	select {
	case l.slot <- struct{}{}:
		return k.unlocker(key, l), true
	default:
		k.drop(key, l)
		return nil, false
	}
}

// ref returns key's entry, counting the caller's interest in it.
func (k *Locks) ref(key string) *keyLock {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.m[key]
	if !ok {
		l = &keyLock{slot: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	return l
}

func (k *Locks) unlocker(key string, l *keyLock) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.slot
			k.drop(key, l)
		})
	}
}

// drop ends one holder's or waiter's interest in l.
func (k *Locks) drop(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(k.m, key)
	}
}

// Len is how many keys have a holder or a waiter.
func (k *Locks) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// Interest is how many hold or wait for key's lock.
func (k *Locks) Interest(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.m[key]; ok {
		return l.refs
	}
	return 0
}
