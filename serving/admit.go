package serving

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"aima/errs"
	"aima/gpu"
	"aima/services"
)

// AdmitOptions bound how a request waits for its service.
type AdmitOptions struct {
	// MaxQueue is how many requests may wait for one service (to start,
	// wake or be swapped in); one more is refused at once. 0: no bound.
	MaxQueue int
	// OnWait is called when the request starts waiting and whenever what
	// it waits for changes, with a short description ("starting, phase
	// pull", "waking", "swapping out svc-x").
	OnWait func(s services.Service, what string)
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
	Service services.Service
	sc      *Scheduler
	once    sync.Once
}

// Done ends the request and adds its figures to the service's.
func (a *Admission) Done(r RequestFigures) {
	a.once.Do(func() { a.sc.finish(a.Service.ID, r, a.sc.now()) })
}

// Admit makes the service ready for one request and counts the request in
// flight. A running service admits at once. Otherwise the request waits,
// sharing the one start or wake with every other waiter: a sleeping
// service is woken, a stopped (or failed) on-demand one is started, a
// member of a swap group is swapped in. A start that fails answers every
// waiter with its reason. ctx bounds the wait.
func (sc *Scheduler) Admit(ctx context.Context, id string, opts AdmitOptions) (*Admission, error) {
	sc.mu.Lock()
	e := sc.entryLocked(id)
	if !e.held() {
		if s, ok := sc.readyNow(id); ok {
			// Fast path: a ready service admits without a store read.
			e.InFlight++
			e.Requests++
			sc.mu.Unlock()
			return &Admission{Service: s, sc: sc}, nil
		}
	}
	if opts.MaxQueue > 0 && e.Waiting >= opts.MaxQueue {
		sc.mu.Unlock()
		return nil, notReady("%d requests already wait for service %s; try again later", e.Waiting, id)
	}
	e.Waiting++
	sc.notifyLocked()
	sc.mu.Unlock()
	waiting := true
	defer func() {
		if waiting {
			sc.mu.Lock()
			e.Waiting--
			sc.notifyLocked()
			sc.mu.Unlock()
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
		changed := sc.waitCh()
		s, err := sc.m.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if s.Status == services.StatusRunning || s.Status == services.StatusUnhealthy {
			sc.mu.Lock()
			if !e.held() {
				e.Waiting--
				waiting = false
				e.InFlight++
				e.Requests++
				sc.notifyLocked()
				sc.mu.Unlock()
				if s.Status == services.StatusRunning {
					sc.remember(s)
				}
				return &Admission{Service: s, sc: sc}, nil
			}
			sc.mu.Unlock()
		}
		what, err := sc.activate(ctx, s, &sawStart, opts.ReadOnly)
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
func (sc *Scheduler) activate(ctx context.Context, s services.Service, sawStart *bool, readOnly bool) (string, error) {
	if sc.isMoving(s.ID) && !s.Status.HoldsGPUs() {
		return "moving to another GPU", nil // the drain starts it again
	}
	switch s.Status {
	case services.StatusRunning, services.StatusUnhealthy:
		return "waiting for a release of " + s.ID + " to finish", nil // held: a swap or an idle release is under way
	case services.StatusCreating:
		*sawStart = true
		return fmt.Sprintf("starting, phase %s", s.Phase), nil
	case services.StatusStopping:
		return "stopping", nil
	case services.StatusSleeping:
		if readOnly {
			return "", errs.ReadOnly("waking service " + s.ID + " for an inference request")
		}
		if _, err := sc.m.Wake(ctx, s.ID); err != nil {
			return sc.wakeElsewhere(ctx, s, err, sawStart)
		}
		return "waking", nil
	}
	// created, stopped, failed
	if s.Status == services.StatusFailed && *sawStart {
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
	res, err := sc.m.Start(ctx, s.ID, 0)
	if err != nil {
		return "", err
	}
	*sawStart = true
	return fmt.Sprintf("starting, phase %s", res.Service.Phase), nil
}

// wakeElsewhere is what a request for a sleeping on-demand service does
// when its wake is refused: its engine is bound to GPUs that others now
// hold and cannot give up (busy, or not evictable). Rather than failing
// the request, the sleeping engine is stopped and the service started
// cold where there is room (which may evict in turn). Other errors, and
// services that are not on demand, fail as before.
func (sc *Scheduler) wakeElsewhere(ctx context.Context, s services.Service, wakeErr error, sawStart *bool) (string, error) {
	var r *gpu.Refusal
	if !s.OnDemand || !errors.As(wakeErr, &r) {
		return "", wakeErr
	}
	where := "its GPUs"
	if s.GPULease != nil {
		where = s.GPULease.Text()
	}
	if _, err := sc.m.StopFor(ctx, s.ID, fmt.Sprintf("could not wake on %s (%s): starting it again where there is room", where, r.Message)); err != nil {
		return "", err
	}
	res, err := sc.m.Start(ctx, s.ID, 0)
	if err != nil {
		return "", err
	}
	*sawStart = true
	return fmt.Sprintf("starting, phase %s (its GPUs were taken while it slept)", res.Service.Phase), nil
}
