package services

import (
	"context"
	"fmt"
	"sync"
	"time"

	"aima/errs"
)

// AdmitOptions bound how a request waits for its service.
type AdmitOptions struct {
	// MaxQueue is how many requests may wait for one service (to start,
	// wake or be swapped in); one more is refused at once. 0: no bound.
	MaxQueue int
	// OnWait is called when the request starts waiting and whenever what
	// it waits for changes, with a short description ("starting, phase
	// pull", "waking", "swapping out svc-x").
	OnWait func(s Service, what string)
	// ReadOnly admits only to a service that runs (or is already
	// starting): one that would have to be started, woken or swapped in
	// is refused with errs.ReadOnly, since a read-only daemon changes
	// nothing.
	ReadOnly bool
}

// NotReadyError is a refusal that asking again later may cure: the wait
// queue is full, or the caller stopped waiting while the service was still
// starting. Its kind is Unavailable.
type NotReadyError struct {
	Err *errs.Error
}

func (e *NotReadyError) Error() string { return e.Err.Error() }

// Unwrap exposes the kinded error.
func (e *NotReadyError) Unwrap() error { return e.Err }

func notReady(format string, args ...any) error {
	return &NotReadyError{Err: errs.New(errs.Unavailable, format, args...)}
}

// waitKeepalive is how often a waiting request is told again what it
// waits for when nothing changed.
const waitKeepalive = 15 * time.Second

// Admission is one request admitted to a ready service. Done must be
// called exactly once when the request ends (after the last byte of a
// stream): until then the request counts as in flight, which holds off
// idle release and swaps.
type Admission struct {
	Service Service
	m       *Manager
	once    sync.Once
}

// Done ends the request and adds its figures to the service's.
func (a *Admission) Done(r RequestFigures) {
	a.once.Do(func() { a.m.serving.finish(a.Service.ID, r, a.m.now()) })
}

// Admit makes the service ready for one request and counts the request in
// flight. A running service admits at once. Otherwise the request waits,
// sharing the one start or wake with every other waiter: a sleeping
// service is woken, a stopped (or failed) on-demand one is started, a
// member of a swap group is swapped in. A start that fails answers every
// waiter with its reason. ctx bounds the wait.
func (m *Manager) Admit(ctx context.Context, id string, opts AdmitOptions) (*Admission, error) {
	g := m.serving
	g.mu.Lock()
	f := g.entryLocked(id)
	if !f.draining {
		if s, ok := m.readyNow(id); ok {
			// Fast path: a ready service admits without a store read.
			f.InFlight++
			f.Requests++
			g.mu.Unlock()
			return &Admission{Service: s, m: m}, nil
		}
	}
	if opts.MaxQueue > 0 && f.Waiting >= opts.MaxQueue {
		g.mu.Unlock()
		return nil, notReady("%d requests already wait for service %s; try again later", f.Waiting, id)
	}
	f.Waiting++
	g.notifyLocked()
	g.mu.Unlock()
	waiting := true
	defer func() {
		if waiting {
			g.mu.Lock()
			f.Waiting--
			g.notifyLocked()
			g.mu.Unlock()
		}
	}()
	lastWhat := ""
	sawStart := false
	// A long phase (loading a big model) says nothing new for minutes:
	// repeat what the request waits for, so a streamed client and any
	// proxy between see the connection alive.
	keepalive := time.NewTicker(waitKeepalive)
	defer keepalive.Stop()
	for {
		changed := g.waitCh()
		s, err := m.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if s.Status == StatusRunning || s.Status == StatusUnhealthy {
			g.mu.Lock()
			if !f.draining {
				f.Waiting--
				waiting = false
				f.InFlight++
				f.Requests++
				g.notifyLocked()
				g.mu.Unlock()
				if s.Status == StatusRunning {
					m.remember(s)
				}
				return &Admission{Service: s, m: m}, nil
			}
			g.mu.Unlock()
		}
		what, err := m.activate(ctx, s, &sawStart, opts.ReadOnly)
		if err != nil {
			return nil, err
		}
		if opts.OnWait != nil && what != "" && what != lastWhat {
			opts.OnWait(s, what)
			lastWhat = what
		}
		select {
		case <-changed:
		case <-keepalive.C:
			if opts.OnWait != nil && lastWhat != "" {
				opts.OnWait(s, lastWhat)
			}
		case <-ctx.Done():
			if ctx.Err() == context.Canceled {
				return nil, errs.New(errs.Canceled, "request canceled while waiting for service %s (%s)", s.ID, lastWhat)
			}
			return nil, notReady("service %s is not ready yet (%s); try again later", s.ID, lastWhat)
		}
	}
}

// activate does what the service needs to become ready for a waiting
// request and says what the request now waits for. It never blocks for
// long: a start runs in the background; a wake and a swap take seconds.
// readOnly refuses to start, wake or swap in (errs.ReadOnly); waiting for
// what is under way is still allowed.
func (m *Manager) activate(ctx context.Context, s Service, sawStart *bool, readOnly bool) (string, error) {
	if m.serving.isMoving(s.ID) && !holdsGPUs(s.Status) {
		return "moving to another GPU", nil // the drain starts it again
	}
	switch s.Status {
	case StatusRunning, StatusUnhealthy:
		return "waiting for a release of " + s.ID + " to finish", nil // draining: a swap or an idle release is under way
	case StatusCreating:
		*sawStart = true
		return fmt.Sprintf("starting, phase %s", s.Phase), nil
	case StatusStopping:
		return "stopping", nil
	case StatusSleeping:
		if readOnly {
			return "", errs.ReadOnly("waking service " + s.ID + " for an inference request")
		}
		if _, err := m.Wake(ctx, s.ID); err != nil {
			return m.wakeElsewhere(ctx, s, err, sawStart)
		}
		return "waking", nil
	}
	// created, stopped, failed
	if s.Status == StatusFailed && *sawStart {
		return "", errs.New(errs.Unavailable, "service %s failed to start: %s", s.ID, s.Reason)
	}
	if !s.OnDemand {
		return "", errs.New(errs.Unavailable, "service %s is %s and not on demand; start it with service_start (or create it with on_demand)", s.ID, s.Status)
	}
	if readOnly {
		verb := "starting"
		if s.SwapGroup != "" {
			verb = "swapping in"
		}
		return "", errs.ReadOnly(verb + " service " + s.ID + " for an inference request")
	}
	res, err := m.Start(ctx, s.ID, 0)
	if err != nil {
		return "", err
	}
	*sawStart = true
	return fmt.Sprintf("starting, phase %s", res.Service.Phase), nil
}

// readyNow reports a cached ready record of the service, so the hot path
// of a request to a running service costs no store read. Called with the
// serving state's lock held.
func (m *Manager) readyNow(id string) (Service, bool) {
	m.readyMu.RLock()
	defer m.readyMu.RUnlock()
	s, ok := m.ready[id]
	return s, ok
}

// remember caches a ready record for readyNow; transition keeps it true.
func (m *Manager) remember(s Service) {
	m.readyMu.Lock()
	defer m.readyMu.Unlock()
	m.ready[s.ID] = s
}

// noteTransition keeps the ready cache and the idle clock true after a
// status change, and wakes waiters.
func (m *Manager) noteTransition(s Service) {
	m.readyMu.Lock()
	if s.Status == StatusRunning {
		m.ready[s.ID] = s
	} else {
		delete(m.ready, s.ID)
	}
	m.readyMu.Unlock()
	if s.Status == StatusRunning && s.IdleTimeout != "" {
		if d, err := time.ParseDuration(s.IdleTimeout); err == nil {
			m.serving.arm(s.ID, d, m.now())
			return
		}
	}
	m.serving.notify()
}

// drain stops admitting requests to the service and waits until none is
// in flight; the returned function admits again.
func (m *Manager) drain(ctx context.Context, id string) (func(), error) {
	g := m.serving
	g.mu.Lock()
	f := g.entryLocked(id)
	f.draining = true
	g.mu.Unlock()
	undo := func() {
		g.mu.Lock()
		f.draining = false
		g.notifyLocked()
		g.mu.Unlock()
	}
	for {
		g.mu.Lock()
		n, ch := f.InFlight, g.changed
		g.mu.Unlock()
		if n == 0 {
			return undo, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			undo()
			return nil, notReady("service %s still has %d requests in flight; try again later", id, n)
		}
	}
}
