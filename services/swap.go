package services

import (
	"context"
	"fmt"

	"aima/events"
)

// swap makes room in s's swap group for s: the group's active member (one
// that runs, is starting or is unhealthy) first answers the requests
// already waiting for it and those in flight, then is put to sleep (or
// stopped where it cannot sleep). It returns with the group locked; the
// caller starts or wakes s and then calls the returned function, so swaps
// of one group never interleave. This is the one place a swap frees what
// the next member needs.
func (m *Manager) swap(ctx context.Context, s Service) (func(), error) {
	unlock := m.lock("swap-group/" + s.SwapGroup)
	all, err := m.shared(ctx)
	if err != nil {
		unlock()
		return nil, err
	}
	for _, p := range all {
		if p.ID == s.ID || p.SwapGroup != s.SwapGroup {
			continue
		}
		if err := m.swapOut(ctx, p.ID, s); err != nil {
			unlock()
			return nil, err
		}
	}
	return unlock, nil
}

// up reports whether a swap-group member holds its GPUs.
func up(st Status) bool {
	return st == StatusRunning || st == StatusUnhealthy || st == StatusCreating
}

// swapOut releases one member of s's group if it is up: once no request
// waits for it (those are answered first) and none is in flight. A member
// that goes down meanwhile (an idle release) needs nothing more.
func (m *Manager) swapOut(ctx context.Context, id string, s Service) error {
	announced := false
	for {
		changed := m.gate.waitCh()
		p, err := m.col.Get(ctx, id)
		if err != nil || !up(p.Status) {
			return nil
		}
		if !announced {
			announced = true
			m.bus.Publish(events.Event{ServiceID: s.ID, Run: s.Run, Type: events.TypeMessage, Status: string(s.Status),
				Message: fmt.Sprintf("swap group %s: waiting for %s to finish its requests, then releasing it", s.SwapGroup, p.ID)})
		}
		if m.gate.waiting(id) == 0 {
			undo, err := m.drain(ctx, id)
			if err != nil {
				return err
			}
			defer undo()
			if p, err = m.col.Get(ctx, id); err != nil || !up(p.Status) {
				return err
			}
			return m.release(ctx, p, fmt.Sprintf("swapped out for %s", s.ID))
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return notReady("service %s still has requests waiting; try again later", id)
		}
	}
}
