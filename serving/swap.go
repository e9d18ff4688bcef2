package serving

import (
	"context"
	"fmt"

	"aima/events"
	"aima/services"
)

// SwapIn makes room in s's swap group for s (services.Serving; the
// lifecycle's Start and Wake call it for a member of a swap group): the group's active member (one
// that runs, is starting or is unhealthy) first answers the requests
// already waiting for it and those in flight, then is put to sleep (or
// stopped where it cannot sleep). It returns with the group locked; the
// caller starts or wakes s and then calls the returned function, so swaps
// of one group never interleave. This is the one place a swap frees what
// the next member needs.
//
// The group lock is held only while something is being done, never while
// the swap waits for the active member's waiting requests: those requests
// may themselves need the group lock to get through (one that saw its
// service stopped calls Start, which swaps too, before it learns the
// service already runs), so waiting for them under the lock was a
// deadlock that held every request of the group until its client gave up.
// Instead the swap takes the lock, releases every member that has nothing
// waiting, and when a member still has waiters it lets go of the lock and
// waits for a change (a request admitted or ended, a status change), then
// starts over. The lock itself is a channel (keylock.Locks), so every wait for
// it ends with ctx. Draining a member's requests in flight does happen
// under the lock: an admitted request never needs the lock to end.
func (sc *Scheduler) SwapIn(ctx context.Context, s services.Service) (func(), error) {
	announced := map[string]bool{}
	for {
		changed := sc.waitCh()
		unlock, err := sc.groups.Lock(ctx, s.SwapGroup)
		if err != nil {
			return nil, notReady("swap group %s is busy swapping; try again later", s.SwapGroup)
		}
		busy, err := sc.swapOutIdle(ctx, s, announced)
		if err != nil {
			unlock()
			return nil, err
		}
		if busy == "" {
			return unlock, nil
		}
		unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, notReady("service %s still has requests waiting; try again later", busy)
		}
	}
}

// swapOutIdle releases every member of s's group that is up and has no
// request waiting for it, and returns the ID of one that is up and still
// has waiters ("" when none is). Called with the group locked.
func (sc *Scheduler) swapOutIdle(ctx context.Context, s services.Service, announced map[string]bool) (string, error) {
	all, err := sc.m.ListShared(ctx)
	if err != nil {
		return "", err
	}
	busy := ""
	for _, p := range all {
		if p.ID == s.ID || p.SwapGroup != s.SwapGroup || !p.Status.HoldsGPUs() {
			continue
		}
		if !announced[p.ID] {
			announced[p.ID] = true
			sc.m.Bus().Publish(events.Event{ServiceID: s.ID, Run: s.Run, Type: events.TypeMessage, Status: string(s.Status),
				Message: fmt.Sprintf("swap group %s: waiting for %s to finish its requests, then releasing it", s.SwapGroup, p.ID)})
		}
		if sc.waiting(p.ID) > 0 {
			busy = p.ID
			continue
		}
		if err := sc.swapOut(ctx, p.ID, s); err != nil {
			return "", err
		}
	}
	return busy, nil
}

// swapOut releases one member of s's group, which nothing waits for:
// new requests are held off, those in flight end, then it sleeps or
// stops. A member that went down meanwhile (an idle release) needs
// nothing more.
func (sc *Scheduler) swapOut(ctx context.Context, id string, s services.Service) error {
	resume, err := sc.quiesce(ctx, id)
	if err != nil {
		return err
	}
	defer resume()
	p, err := sc.m.Get(ctx, id)
	if err != nil || !p.Status.HoldsGPUs() {
		return err
	}
	return sc.m.Release(ctx, p, fmt.Sprintf("swapped out for %s", s.ID))
}
