package services

import (
	"context"
	"fmt"
	"time"

	"aima/errs"
)

// Restart policies.
const (
	RestartNo        = "no"
	RestartOnFailure = "on-failure"
)

// Back-off of the on-failure policy, as Kubernetes does it.
const (
	restartResetAfter = 10 * time.Minute
	restartMaxBackoff = 5 * time.Minute
)

// ParseRestartPolicy validates a policy from input ("" means no).
func ParseRestartPolicy(p string) (string, error) {
	switch p {
	case "", RestartNo:
		return RestartNo, nil
	case RestartOnFailure:
		return RestartOnFailure, nil
	}
	return "", errs.Invalid("restart_policy", "restart_policy %q: want no or on-failure", p)
}

// restartPlan decides whether the failing service s is restarted by its
// policy. It returns the change to make in the failure's record update and
// what to do once that update is stored. The delay is the base doubled per
// restart in the current streak, capped at 5 minutes; a run that lasted 10
// minutes starts a new streak.
func (m *Manager) restartPlan(s Service) (plan func(*Service), schedule func()) {
	if s.RestartPolicy != RestartOnFailure {
		return func(*Service) {}, func() {}
	}
	step := s.BackoffStep
	if s.ReadyAt != nil && m.now().Sub(*s.ReadyAt) >= restartResetAfter {
		step = 0
	}
	d := m.opts.RestartBackoff
	for i := 0; i < step && d < restartMaxBackoff; i++ {
		d *= 2
	}
	d = min(d, restartMaxBackoff)
	at := m.now().Add(d).UTC()
	return func(x *Service) {
			x.NextRestartAt = &at
			x.BackoffStep = step + 1
		}, func() {
			m.scheduleRestart(s.ID, s.Run, d)
		}
}

// scheduleRestart starts the service again after d, unless someone touched
// it meanwhile (a stop, a manual start, a delete). A restart already
// waiting on the same failed run is not scheduled twice.
func (m *Manager) scheduleRestart(id string, run int, d time.Duration) {
	m.mu.Lock()
	if pending, ok := m.restarts[id]; ok && pending == run {
		m.mu.Unlock()
		return
	}
	m.restarts[id] = run
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer m.Contain("restarting by the restart policy", id)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		m.mu.Lock()
		if m.restarts[id] == run {
			delete(m.restarts, id)
		}
		m.mu.Unlock()
		m.restartIfDue(id, run)
	}()
}

// resumeRestart schedules the restart a failed service's record still
// promises (next_restart_at), after a daemon restart: at that time, or at
// once when it has passed.
func (m *Manager) resumeRestart(s Service) {
	if s.Status != StatusFailed || s.RestartPolicy != RestartOnFailure || s.NextRestartAt == nil {
		return
	}
	m.scheduleRestart(s.ID, s.Run, max(s.NextRestartAt.Sub(m.now()), 0))
}

// restartIfDue starts the service again if the failure of run is still
// what it is in (no stop, manual start or delete since).
func (m *Manager) restartIfDue(id string, run int) {
	s, err := m.col.Get(m.ctx, id)
	if err != nil || s.Status != StatusFailed || s.Run != run || s.NextRestartAt == nil {
		return
	}
	if _, err := m.col.Update(m.ctx, id, func(x *Service) error {
		x.RestartCount++
		x.NextRestartAt = nil
		return nil
	}); err != nil {
		return
	}
	m.message(id, run, "", fmt.Sprintf("restart policy on-failure: restarting (restart %d)", s.RestartCount+1))
	if _, err := m.Start(context.WithoutCancel(m.ctx), id, 0); err != nil {
		m.log.Warn("automatic restart", "service", id, "err", err)
	}
}
