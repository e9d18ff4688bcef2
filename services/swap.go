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
	all, err := m.col.List(ctx)
	if err != nil {
		unlock()
		return nil, err
	}
	for _, p := range all {
		if p.ID == s.ID || p.SwapGroup != s.SwapGroup {
			continue
		}
		switch p.Status {
		case StatusRunning, StatusUnhealthy, StatusCreating:
		default:
			continue
		}
		reason := fmt.Sprintf("swapped out for %s", s.ID)
		m.bus.Publish(events.Event{ServiceID: s.ID, Run: s.Run, Type: events.TypeMessage, Status: string(s.Status),
			Message: fmt.Sprintf("swap group %s: waiting for %s to finish its requests, then releasing it", s.SwapGroup, p.ID)})
		undo, err := m.drain(ctx, p.ID, true)
		if err != nil {
			unlock()
			return nil, err
		}
		cur, err := m.col.Get(ctx, p.ID)
		if err == nil {
			err = m.release(ctx, cur, reason)
		}
		undo()
		if err != nil {
			unlock()
			return nil, err
		}
	}
	return unlock, nil
}
