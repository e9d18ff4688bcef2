package services

import "context"

// The serving state's holds for drains and evictions: a held service admits no new
// request (they wait), a moving one tells them it is moving instead of
// starting it from Admit.

// hold stops admitting requests to the service until the returned
// function is called; requests in flight go on.
func (g *servingState) hold(id string) func() {
	g.mu.Lock()
	f := g.entryLocked(id)
	was := f.draining
	f.draining = true
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		f.draining = was
		g.notifyLocked()
		g.mu.Unlock()
	}
}

// claimIdle holds the service only if nothing is in flight or waiting and
// nobody else holds it: an eviction never takes a busy service.
func (g *servingState) claimIdle(id string) (func(), bool) {
	g.mu.Lock()
	f := g.entryLocked(id)
	if f.InFlight > 0 || f.Waiting > 0 || f.draining || f.moving {
		g.mu.Unlock()
		return nil, false
	}
	f.draining = true
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		f.draining = false
		g.notifyLocked()
		g.mu.Unlock()
	}, true
}

// idleNow reports a service with nothing in flight, waiting or held.
func (g *servingState) idleNow(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.entries[id]
	return !ok || (f.InFlight == 0 && f.Waiting == 0 && !f.draining && !f.moving)
}

// setMoving marks the service as being moved to other GPUs until the
// returned function is called.
func (g *servingState) setMoving(id string) func() {
	g.mu.Lock()
	f := g.entryLocked(id)
	f.moving = true
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		f.moving = false
		g.notifyLocked()
		g.mu.Unlock()
	}
}

// isMoving reports a service a drain is moving.
func (g *servingState) isMoving(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.entries[id]
	return ok && f.moving
}

// inFlight is the service's requests in flight.
func (g *servingState) inFlight(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.entries[id]; ok {
		return f.InFlight
	}
	return 0
}

// awaitNoneInFlight waits until the service has no request in flight.
func (g *servingState) awaitNoneInFlight(ctx context.Context, id string) error {
	for {
		g.mu.Lock()
		n, ch := g.entryLocked(id).InFlight, g.changed
		g.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lastUsed is when the service last finished a request or became ready
// (zero: never, since the daemon started).
func (g *servingState) lastUsed(id string) (t0 int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.entries[id]; ok && !f.lastActivity.IsZero() {
		return f.lastActivity.UnixNano()
	}
	return 0
}
