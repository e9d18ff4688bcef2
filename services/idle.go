package services

import (
	"context"
	"time"
)

// idleLoop releases services whose idle timeout ran out: nothing in
// flight (an open stream counts) and nothing waiting, for that long. It
// sleeps until the next deadline; every request end or status change
// re-arms it.
func (m *Manager) idleLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		due, next := m.serving.idleDue(m.now())
		for _, id := range due {
			m.releaseIdleContained(ctx, id)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(m.now()), time.Millisecond)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.serving.kick:
		}
	}
}

// releaseIdleContained is releaseIdle with a panic contained to the
// service, so the idle loop goes on.
func (m *Manager) releaseIdleContained(ctx context.Context, id string) {
	defer m.contain("releasing an idle service", id)
	m.releaseIdle(ctx, id)
}

// releaseIdle releases one idle service, if it still is idle.
func (m *Manager) releaseIdle(ctx context.Context, id string) {
	g := m.serving
	g.mu.Lock()
	f := g.entryLocked(id)
	idle, last := f.idle, f.lastActivity
	if f.InFlight > 0 || f.Waiting > 0 || f.draining || idle <= 0 || m.now().Before(last.Add(idle)) {
		g.mu.Unlock()
		return
	}
	f.idle = 0 // disarmed; the next ready transition arms it again
	f.draining = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		f.draining = false
		g.notifyLocked()
		g.mu.Unlock()
	}()
	s, err := m.col.Get(ctx, id)
	if err != nil || (s.Status != StatusRunning && s.Status != StatusUnhealthy) {
		return
	}
	if err := m.release(ctx, s, "idle for "+idle.String()); err != nil {
		m.log.Warn("idle release", "service", id, "err", err)
	}
}

// armIdle starts the idle clock of services that are running when the
// daemon starts.
func (m *Manager) armIdle(ctx context.Context) {
	all, err := m.shared(ctx)
	if err != nil {
		return
	}
	for _, s := range all {
		if s.Status == StatusRunning {
			m.noteTransition(*s)
		}
	}
}
