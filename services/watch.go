package services

import (
	"context"
	"errors"
	"fmt"
	"time"

	"aima/errs"
	"aima/internal/contained"
	"aima/runtime"
)

// Run reconciles the store with Docker and starts the manager's background
// watchers: Docker events (a container that dies or disappears under a
// running service makes it failed within a second) and the liveness probe
// of running services. The first subscription and reconcile happen before
// Run returns, so the daemon serves a reconciled state; the error says why
// that reconcile failed (the watcher retries until Docker answers). The
// watchers end with Close.
func (m *Manager) Run() error {
	since := m.now()
	evs, errc, err := m.subscribe(m.ctx, since)
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		contained.KeepRunning(m.ctx, m.log, "the container event watcher", func(restarted bool) {
			if restarted { // the stream it read is gone with it
				evs, errc, _ = m.subscribe(m.ctx, since)
			}
			m.watchDocker(m.ctx, since, evs, errc)
		})
	}()
	go func() {
		defer m.wg.Done()
		contained.KeepRunning(m.ctx, m.log, "the liveness loop", func(bool) { m.livenessLoop(m.ctx) })
	}()
	return err
}

// DockerReachable reports whether the last contact with the engine worked.
func (m *Manager) DockerReachable() bool { return !m.dockerDown.Load() }

// subscribe subscribes to aima's container events, then reconciles every
// service with the containers that exist (subscribe first, so nothing falls
// between the listing and the events). Only the runtime being unreachable
// marks Docker down: a store error (or a damaged record) is the store's
// problem, and calling it Docker's would mark every status stale and stop
// the liveness probe for nothing.
func (m *Manager) subscribe(ctx context.Context, since time.Time) (<-chan runtime.Event, <-chan error, error) {
	evs, errc := m.rt.Events(ctx, runtime.EventOptions{Since: since, Labels: map[string]string{runtime.LabelManaged: "true"}})
	err := m.Reconcile(ctx)
	switch {
	case err == nil:
		m.setDockerUp()
	case dockerUnreachable(err):
		m.setDockerDown(err)
	default:
		m.setDockerUp() // the runtime answered; reconcile failed after that
		m.log.Error("reconcile: the state store failed (Docker is reachable)", "err", err)
	}
	return evs, errc, err
}

// runtimeError marks an error of the container runtime, as opposed to one
// of the store, in what Reconcile returns.
type runtimeError struct{ err error }

func (e *runtimeError) Error() string { return e.err.Error() }
func (e *runtimeError) Unwrap() error { return e.err }

// dockerUnreachable reports whether err says the runtime could not be
// reached (kind unavailable or deadline_exceeded from the runtime itself).
func dockerUnreachable(err error) bool {
	var re *runtimeError
	if !errors.As(err, &re) {
		return false
	}
	return errs.Is(re.err, errs.Unavailable) || errs.Is(re.err, errs.DeadlineExceeded)
}

// watchDocker follows the event stream and resubscribes with since= after
// it breaks.
func (m *Manager) watchDocker(ctx context.Context, since time.Time, evs <-chan runtime.Event, errc <-chan error) {
	backoff := time.NewTimer(0)
	defer backoff.Stop()
	<-backoff.C
	for {
		for open := true; open; {
			select {
			case ev, ok := <-evs:
				if !ok {
					open = false
					break
				}
				since = ev.Time
				m.handleDockerEvent(ctx, ev)
				if m.hooks.eventHandled != nil {
					m.hooks.eventHandled(ev)
				}
			case err := <-errc:
				if ctx.Err() == nil {
					m.setDockerDown(err)
				}
				open = false
			case <-ctx.Done():
				return
			}
		}
		backoff.Reset(m.resubscribeDelay)
		select {
		case <-ctx.Done():
			return
		case <-backoff.C:
		}
		evs, errc, _ = m.subscribe(ctx, since)
	}
}

func (m *Manager) setDockerDown(err error) {
	if !m.dockerDown.Swap(true) {
		m.log.Warn("docker engine unreachable; statuses are the last known until it is back", "err", err)
	}
}

func (m *Manager) setDockerUp() {
	if m.dockerDown.Swap(false) {
		m.log.Info("docker engine reachable again; reconciled")
	}
}

// handleDockerEvent is onDockerEvent with a panic contained to the event's
// service, so the watcher goes on with the next event.
func (m *Manager) handleDockerEvent(ctx context.Context, ev runtime.Event) {
	defer m.Contain("handling the container event "+string(ev.Action), ev.Labels[runtime.LabelService])
	m.onDockerEvent(ctx, ev)
}

// onDockerEvent reacts to a container event: the end of a running
// service's container, or a container created for a deleted service.
func (m *Manager) onDockerEvent(ctx context.Context, ev runtime.Event) {
	id := ev.Labels[runtime.LabelService]
	if id == "" {
		return
	}
	switch ev.Action {
	case runtime.ActionCreate:
		m.removeIfUnowned(ctx, id, ev)
	case runtime.ActionDie:
		code := ev.ExitCode
		what := endWhat(ev.Reason, fmt.Sprintf("container exited with code %d%s", code, ExitDescription(code)))
		m.containerEnded(ctx, id, ev.ContainerID, what, &code, ev.Reason, ev.Message)
	case runtime.ActionDestroy:
		m.containerEnded(ctx, id, ev.ContainerID, endWhat(ev.Reason, "container was removed outside aima"), nil, ev.Reason, ev.Message)
	}
}

// removeIfUnowned removes a container of this store that the runtime
// created for a service with no record: the create of a start that a delete
// cancelled, carried out by Docker after the delete had listed the
// service's containers (when Docker answered later than mutationGrace).
// It runs under the service lock, so a delete either saw the container or
// had finished. A damaged record keeps its containers, and another store's
// containers are never touched.
func (m *Manager) removeIfUnowned(ctx context.Context, id string, ev runtime.Event) {
	if mine := m.storeID(); mine == "" || ev.Labels[runtime.LabelStore] != mine {
		return
	}
	unlock := m.lock(id)
	defer unlock()
	if _, err := m.col.Get(ctx, id); !errs.Is(err, errs.NotFound) {
		return
	}
	switch err := m.rt.RemoveContainer(ctx, ev.ContainerID, runtime.RemoveOptions{Force: true}); {
	case err == nil:
		m.log.Warn("removed a container created for a deleted service", "service", id, "container", shortID(ev.ContainerID))
	case !errs.Is(err, errs.NotFound): // NotFound: the delete (or the start it cancelled) removed it
		m.log.Warn("remove the container of a deleted service", "service", id, "container", shortID(ev.ContainerID), "err", err)
	}
}

// containerEnded marks a running service failed because its container is
// gone or exited, with the engine's reason, and applies the restart policy.
//
// The end of the container a start in progress runs is the start's to
// report, but the start may already have seen the engine healthy and be
// about to record running: then nobody would report it until liveness gave
// up on the engine. So it is looked at again once that start has ended.
// why and whyMsg are the runtime's typed reason for the end, if any.
func (m *Manager) containerEnded(ctx context.Context, id, containerID, what string, code *int, why runtime.Reason, whyMsg string) {
	unlock := m.lock(id)
	defer unlock()
	s, err := m.col.Get(ctx, id)
	if err != nil {
		return
	}
	if s.Status == StatusCreating && s.ContainerID == containerID {
		m.mu.Lock()
		job := m.jobs[id]
		m.mu.Unlock()
		if job != nil {
			m.afterStart(job, id, func() { m.containerEnded(ctx, id, containerID, what, code, why, whyMsg) })
			return
		}
	}
	m.containerEndedWhy(ctx, s, containerID, what, code, why, whyMsg)
}

// afterStart runs f once the start job has ended (not at all if the daemon
// stops first).
func (m *Manager) afterStart(job *startJob, id string, f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer m.Contain("handling a container's end after its start", id)
		select {
		case <-job.done:
			f()
		case <-m.ctx.Done():
		}
	}()
}

// containerEndedLocked is containerEnded with the service lock held and
// the record read.
func (m *Manager) containerEndedLocked(ctx context.Context, s Service, containerID, what string, code *int) {
	m.containerEndedWhy(ctx, s, containerID, what, code, "", "")
}

// containerEndedWhy is containerEndedLocked with the runtime's typed
// reason of the end from its event (a Pod deleted or lost is gone, so only
// the event can say why); without one, the container's own state says.
func (m *Manager) containerEndedWhy(ctx context.Context, s Service, containerID, what string, code *int, why runtime.Reason, whyMsg string) {
	if (s.Status != StatusRunning && s.Status != StatusUnhealthy && s.Status != StatusSleeping) || s.ContainerID != containerID {
		return // a start or stop owns this container, or it is an old one
	}
	f := failure{kind: FailureDisappeared, exitCode: code, reason: what + " while running"}
	var lines []string
	if info, err := m.rt.InspectContainer(ctx, containerID); err == nil {
		f.oom = info.OOMKilled
		if !info.Running && code == nil {
			c := info.ExitCode
			f.exitCode = &c
		}
		if why == "" {
			why, whyMsg = info.Reason, info.Message
		}
		info.ID = containerID
		lines = m.endLines(ctx, info, m.engineOf(s.EngineType))
	} else if !errs.Is(err, errs.NotFound) {
		return // cannot tell; the resync after reconnecting decides
	}
	if f.exitCode != nil {
		f.kind = exitKind(f.oom)
	}
	if s.Status == StatusSleeping {
		f.reason = what + " while sleeping"
	}
	f.typedEnd(why, whyMsg)
	f.explain(lines, m.engineOf(s.EngineType))
	m.failRunning(ctx, s, f)
}

// failRunning records the failure of a running service and schedules a
// restart when its policy asks for one. Called with the service lock held.
func (m *Manager) failRunning(ctx context.Context, s Service, f failure) {
	plan, schedule := m.restartPlan(s)
	_, err := m.fail(ctx, s.ID, f, func(x *Service) {
		x.UnhealthySince = nil
		x.PreviousExit = f.reason
		plan(x)
	})
	if err != nil {
		m.log.Warn("record failure", "service", s.ID, "err", err)
		return
	}
	schedule()
}
