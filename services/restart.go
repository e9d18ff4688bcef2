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

// nextRestart returns the back-off before the next automatic restart and
// whether there is one: base doubling per restart, capped at 5 minutes; a
// run that lasted 10 minutes resets the count.
func (m *Manager) nextRestart(s Service) (time.Duration, bool) {
	if s.RestartPolicy != RestartOnFailure {
		return 0, false
	}
	n := s.RestartCount
	if s.ReadyAt != nil && m.now().Sub(*s.ReadyAt) >= restartResetAfter {
		n = 0
	}
	d := m.opts.RestartBackoff
	for i := 0; i < n && d < restartMaxBackoff; i++ {
		d *= 2
	}
	return min(d, restartMaxBackoff), true
}

// scheduleRestart starts the service again after d, unless someone touched
// it meanwhile (a stop, a manual start, a delete).
func (m *Manager) scheduleRestart(id string, run int, d time.Duration) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
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
	}()
}
