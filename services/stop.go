package services

import (
	"context"
	"sort"
	"time"

	"aima/errs"
	"aima/events"
	"aima/runtime"
	"aima/state"
)

// StopResult says what a stop did.
type StopResult struct {
	Service Service
	Note    string
}

// Stop stops a service: a start in progress is cancelled cleanly, the
// container gets SIGTERM (then SIGKILL after the stop timeout) and is kept,
// so its logs stay readable until the next start or a delete.
func (m *Manager) Stop(ctx context.Context, ref string) (StopResult, error) {
	return m.StopFor(ctx, ref, "stop requested")
}

// StopFor is Stop with the reason the record shows: a release, an
// eviction or a move says why.
func (m *Manager) StopFor(ctx context.Context, ref, reason string) (StopResult, error) {
	s, err := m.Get(ctx, ref)
	if err != nil {
		return StopResult{}, err
	}
	unlock, err := m.lockFor(ctx, s.ID)
	if err != nil {
		return StopResult{}, err
	}
	defer unlock()
	m.cancelStart(s.ID)
	if s, err = m.col.Get(ctx, s.ID); err != nil {
		return StopResult{}, err
	}
	switch s.Status {
	case StatusCreated, StatusStopped:
		return StopResult{Service: s, Note: "service is not running"}, nil
	case StatusFailed:
		if err := m.stopContainers(ctx, s.ID); err != nil {
			return StopResult{}, err
		}
		s, err = m.transition(ctx, s.ID, StatusStopped, "stopped after failure", nil)
		return StopResult{Service: s}, err
	}
	if s.Status != StatusStopping {
		if s, err = m.transition(ctx, s.ID, StatusStopping, reason, nil); err != nil {
			return StopResult{}, err
		}
	}
	if err := m.stopContainers(ctx, s.ID); err != nil {
		// Keep the record honest: the stop did not complete.
		_, _ = m.fail(context.WithoutCancel(ctx), s.ID, failure{kind: FailureStopFailed, reason: "stop failed: " + err.Error()}, func(x *Service) {
			// What the last run left stays: this is not a new exit.
			x.ExitCode, x.OOMKilled, x.LogTail = s.ExitCode, s.OOMKilled, s.LogTail
		})
		return StopResult{}, err
	}
	final := "stopped"
	if reason != "stop requested" {
		final = "stopped: " + reason
	}
	s, err = m.transition(ctx, s.ID, StatusStopped, final, func(x *Service) { x.Phase, x.DeadlineAt = "", nil })
	return StopResult{Service: s}, err
}

// cancelStart cancels the service's start in progress, if any, and waits
// for its goroutine to finish so no container is created behind the stop.
func (m *Manager) cancelStart(id string) {
	m.mu.Lock()
	job := m.jobs[id]
	m.mu.Unlock()
	if job == nil {
		return
	}
	job.cancel(errStopRequested)
	select {
	case <-job.done:
	case <-time.After(30 * time.Second):
		m.log.Warn("start did not end after cancel", "service", id)
	}
}

// stopContainers stops every running container of the service.
func (m *Manager) stopContainers(ctx context.Context, id string) error {
	list, err := m.rt.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelService: id}})
	if err != nil {
		return err
	}
	for _, c := range list {
		if !c.Running && c.Status != runtime.StateCreated && c.Status != runtime.StateRestarting {
			continue
		}
		if err := m.rt.StopContainer(ctx, c.ID, runtime.StopOptions{Timeout: m.opts.StopTimeout}); err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	return nil
}

// Restart stops the service (if needed) and starts it again.
func (m *Manager) Restart(ctx context.Context, ref string, timeout time.Duration) (StartResult, error) {
	return m.RestartWith(ctx, ref, StartOptions{Timeout: timeout})
}

// RestartWith is Restart with start options.
func (m *Manager) RestartWith(ctx context.Context, ref string, opts StartOptions) (StartResult, error) {
	if _, err := m.Stop(ctx, ref); err != nil {
		return StartResult{}, err
	}
	return m.StartWith(ctx, ref, opts)
}

// Delete stops the service, removes its containers, its record and its
// history, and publishes the deletion, which ends every wait and follow of
// the service with not_found. A damaged record is deleted the same way (see
// deleteDamaged). When the removal fails, a start the delete cancelled is
// recorded as failed, so the service is never left creating with no start
// running.
func (m *Manager) Delete(ctx context.Context, ref string) (Service, error) {
	s, err := m.Get(ctx, ref)
	if state.IsDamaged(err) {
		return m.deleteDamaged(ctx, ref)
	}
	if err != nil {
		return Service{}, err
	}
	unlock, err := m.lockFor(ctx, s.ID)
	if err != nil {
		return Service{}, err
	}
	defer unlock()
	m.cancelStart(s.ID)
	if err := m.removeContainers(ctx, s.ID); err != nil {
		m.settleCancelledStart(ctx, s.ID, "delete did not complete: "+err.Error())
		return Service{}, err
	}
	if err := m.col.Delete(ctx, s.ID); err != nil {
		m.settleCancelledStart(ctx, s.ID, "delete did not complete: "+err.Error())
		return Service{}, err
	}
	m.forget(ctx, s.ID, s.Run)
	return s, nil
}

// forget publishes a deleted service's end, drops its history and tells
// the transition hook, so the serving layer forgets it too.
func (m *Manager) forget(ctx context.Context, id string, run int) {
	m.deleted(id, run)
	if j := m.opts.Journal; j != nil {
		j.Forget(ctx, id)
	} else {
		events.NewJournal(m.store, nil).Forget(ctx, id)
	}
	m.transitioned(Transition{Service: Service{ID: id, Run: run}, Deleted: true})
	m.bus.Forget(id)
}

// settleCancelledStart records a start that a delete cancelled but could
// not finish as failed (stop_failed: its container may remain). Called with
// the service lock held, after cancelStart.
func (m *Manager) settleCancelledStart(ctx context.Context, id, reason string) {
	bg := context.WithoutCancel(ctx)
	s, err := m.col.Get(bg, id)
	if err != nil || s.Status != StatusCreating {
		return
	}
	if _, err := m.fail(bg, id, failure{kind: FailureStopFailed, reason: reason}, nil); err != nil {
		m.log.Warn("record the cancelled start", "service", id, "err", err)
	}
}

// DeletedError is the not_found error that ends a wait or a follow of a
// service when ev says the service was deleted; nil for any other event.
func DeletedError(ev events.Event) error {
	if ev.Type != events.TypeDeleted {
		return nil
	}
	return ErrDeleted(ev.ServiceID)
}

// ErrDeleted is the not_found error of a wait or follow whose service was
// deleted while it waited: the one wording, whether the deleted event or
// the end of the service's event log told it.
func ErrDeleted(id string) error {
	return errs.NotFoundf("service %s was deleted", id)
}

// Stranded lists the services that are creating or stopping while nothing
// drives them: no start runs and no stop is in progress, so they would
// never settle. It is empty unless aima lost track of a service (doctor
// reports it; a stop settles it). A service whose lifecycle lock is held
// is being driven and is not looked at.
func (m *Manager) Stranded(ctx context.Context) ([]Service, error) {
	all, err := m.shared(ctx)
	if err != nil {
		return nil, err
	}
	var out []Service
	for _, s := range all {
		if s.Status != StatusCreating && s.Status != StatusStopping {
			continue
		}
		if cur, ok := m.strandedNow(ctx, s.ID); ok {
			out = append(out, cur)
		}
	}
	sort.Stable(byCreated(out))
	return out, nil
}

// strandedNow reads the service's record under its lifecycle lock, if the
// lock is free, and says whether it is stranded. The lock is released by a
// defer: the store read must not be able to leave it held.
func (m *Manager) strandedNow(ctx context.Context, id string) (Service, bool) {
	unlock, free := m.locks.TryLock(id)
	if !free {
		return Service{}, false // being driven
	}
	defer unlock()
	cur, err := m.col.Get(ctx, id)
	m.mu.Lock()
	_, starting := m.jobs[id]
	m.mu.Unlock()
	return cur, err == nil && (cur.Status == StatusStopping || (cur.Status == StatusCreating && !starting))
}
