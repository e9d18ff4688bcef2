package services

import (
	"context"
	"sort"
	"time"
)

// stuckGrace is how long past the time its status must have moved on by a
// service may stay before it is reported stuck: a stop or a timed-out start
// takes the stop timeout at most, and a busy host some more.
const stuckGrace = time.Minute

// Stuck is a service that cannot make progress: it has been creating or
// stopping past the time that status must end by (the start's deadline,
// the stop timeout; plus stuckGrace), while an operation still holds it
// (its lifecycle lock is held, or its start is still running). So
// something inside aima is blocked, and nothing will settle the service
// until that ends: a daemon restart does. A service in those statuses that
// nothing holds is Stranded instead (a stop settles it).
type Stuck struct {
	ServiceID string `json:"service_id" jsonschema:"the service"`
	Status    Status `json:"status" jsonschema:"creating or stopping"`
	Phase     Phase  `json:"phase,omitempty" jsonschema:"the start phase, while creating"`
	// Since is when the record last changed.
	Since time.Time `json:"since" jsonschema:"when the service's record last changed"`
	// Deadline is when the status should have moved on by.
	Deadline time.Time `json:"deadline" jsonschema:"when the status should have moved on by (the start deadline or the stop timeout, plus a minute)"`
	// LockHeld: an operation holds the service's lifecycle lock (a stop,
	// a delete, a start being launched); else its start still runs.
	LockHeld bool `json:"lock_held" jsonschema:"an operation (stop, delete, start) holds the service and has not returned; false: its start is still running"`
}

// Stuck lists the services that cannot make progress (see Stuck), oldest
// first. Doctor reports them.
func (m *Manager) Stuck(ctx context.Context) ([]Stuck, error) {
	all, err := m.shared(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	var out []Stuck
	for _, s := range all {
		by, ok := m.settleBy(s)
		if !ok || !now.After(by) {
			continue
		}
		unlock, free := m.locks.TryLock(s.ID)
		held := !free
		if free {
			unlock()
		}
		m.mu.Lock()
		_, starting := m.jobs[s.ID]
		m.mu.Unlock()
		if !held && !starting {
			continue // nothing holds it: Stranded reports it
		}
		out = append(out, Stuck{ServiceID: s.ID, Status: s.Status, Phase: s.Phase, Since: s.UpdatedAt, Deadline: by, LockHeld: held})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out, nil
}

// settleBy is when the service's status must have moved on by, for the
// statuses that must move on by themselves.
func (m *Manager) settleBy(s *Service) (time.Time, bool) {
	switch s.Status {
	case StatusCreating:
		if s.DeadlineAt != nil {
			// At the deadline the start fails and stops its container.
			return s.DeadlineAt.Add(m.opts.StopTimeout + stuckGrace), true
		}
		return s.UpdatedAt.Add(m.opts.StartTimeout + m.opts.StopTimeout + stuckGrace), true
	case StatusStopping:
		return s.UpdatedAt.Add(m.opts.StopTimeout + stuckGrace), true
	}
	return time.Time{}, false
}
