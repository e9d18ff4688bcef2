package serving

import (
	"context"
	"sync"
	"time"

	"aima/services"
)

// Holds: a held service admits no new request (they wait; see Admit) while
// those in flight go on. The lifecycle takes them through services.Serving
// (a sleep, a GPU drain, an eviction); the scheduler takes them for its
// own releases (a swap, an idle release).

// Quiesce stops admitting requests to the service and waits until none is
// in flight or ctx ends (services.Serving). With opts.Moving the waiters
// are told the service moves to other GPUs and do not start it.
func (sc *Scheduler) Quiesce(ctx context.Context, id string, opts services.QuiesceOptions) (resume func(), left int) {
	resume = sc.hold(id, opts.Moving)
	return resume, sc.awaitNoneInFlight(ctx, id, opts.InFlight)
}

// quiesce is Quiesce for the scheduler's own releases: when ctx ends
// first it admits again and refuses with a NotReadyError (a gateway
// request that waits for a swap gets Retry-After).
func (sc *Scheduler) quiesce(ctx context.Context, id string) (func(), error) {
	resume, left := sc.Quiesce(ctx, id, services.QuiesceOptions{})
	if left > 0 {
		resume()
		return nil, notReady("service %s still has %d requests in flight; try again later", id, left)
	}
	return resume, nil
}

// hold stops admitting requests to the service until the returned
// function is called (once; later calls do nothing).
func (sc *Scheduler) hold(id string, moving bool) func() {
	sc.mu.Lock()
	e := sc.entryLocked(id)
	e.holds++
	if moving {
		e.moving++
	}
	sc.mu.Unlock()
	return sc.releaser(e, moving)
}

// releaser ends one hold of e and wakes the waiters.
func (sc *Scheduler) releaser(e *entry, moving bool) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			e.holds--
			if moving {
				e.moving--
			}
			sc.notifyLocked()
		})
	}
}

// awaitNoneInFlight waits until the service has no request in flight and
// returns 0, or returns how many are still in flight when ctx ends.
// inFlight, when set, is told the count once before the wait begins.
func (sc *Scheduler) awaitNoneInFlight(ctx context.Context, id string, inFlight func(n int)) int {
	told := false
	for {
		sc.mu.Lock()
		n, ch := sc.entryLocked(id).InFlight, sc.changed
		sc.mu.Unlock()
		if n == 0 {
			return 0
		}
		if !told && inFlight != nil {
			told = true
			inFlight(n)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return n
		}
	}
}

// ClaimIdle holds the service only if nothing is in flight, waiting or
// held (services.Serving): an eviction never takes a busy service.
func (sc *Scheduler) ClaimIdle(id string) (func(), bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e := sc.entryLocked(id)
	if !e.idleNow() {
		return nil, false
	}
	e.holds++
	return sc.releaser(e, false), true
}

// Idle reports whether the service has nothing in flight, waiting or
// held, and when it last finished a request or became ready (zero:
// never, since the daemon started) (services.Serving).
func (sc *Scheduler) Idle(id string) (lastUsed time.Time, idle bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e, ok := sc.entries[id]
	if !ok {
		return time.Time{}, true
	}
	return e.lastActivity, e.idleNow()
}

// idleNow reports an entry with nothing in flight, waiting or held.
func (e *entry) idleNow() bool {
	return e.InFlight == 0 && e.Waiting == 0 && !e.held() && e.moving == 0
}

// isMoving reports a service a GPU drain is moving.
func (sc *Scheduler) isMoving(id string) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e, ok := sc.entries[id]
	return ok && e.moving > 0
}
