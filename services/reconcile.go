package services

import (
	"context"
	"fmt"
	"time"

	"aima/engines"
	"aima/errs"
	"aima/runtime"
)

// Reconcile rebuilds the truth from the store and Docker when the daemon
// starts: a running service whose container still runs is adopted; a start
// that was in progress resumes its health check and deadline if its
// container still runs; anything whose container is gone or exited becomes
// failed with the reason; a restart the on-failure policy had scheduled is
// scheduled again for its next_restart_at.
//
// Containers are listed first, so an error after that is the store's; a
// runtime error is wrapped (runtimeError) for the watcher to tell them
// apart. Damaged records are left out (see Damaged).
func (m *Manager) Reconcile(ctx context.Context) error {
	containers, err := m.rt.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelManaged: "true"}})
	if err != nil {
		return &runtimeError{err}
	}
	all, err := m.shared(ctx)
	if err != nil {
		return fmt.Errorf("read service records: %w", err)
	}
	byService := map[string][]runtime.ContainerState{}
	for _, c := range containers {
		id := c.Labels[runtime.LabelService]
		byService[id] = append(byService[id], c)
	}
	for _, s := range all {
		c, ok := newest(byService[s.ID])
		if err := m.reconcileOne(ctx, *s, c, ok); err != nil {
			m.log.Warn("reconcile", "service", s.ID, "err", err)
		}
	}
	return nil
}

// reconcileOne settles one service against what the runtime holds for it
// (c, when exists). A service deleted since the list was read is skipped;
// any other store error is returned.
func (m *Manager) reconcileOne(ctx context.Context, s Service, c runtime.ContainerState, exists bool) error {
	unlock := m.lock(s.ID)
	defer unlock()
	s, err := m.col.Get(ctx, s.ID) // the list was read before the lock
	if errs.KindOf(err) == errs.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	_, busy := m.jobs[s.ID]
	m.mu.Unlock()
	if busy {
		return nil // a start of this daemon owns it
	}
	switch s.Status {
	case StatusFailed:
		m.resumeRestart(s)
	case StatusRunning, StatusUnhealthy, StatusSleeping:
		if exists && c.Running && (s.ContainerID == "" || c.ID == s.ContainerID) {
			return nil // adopted
		}
		f := failure{kind: FailureDisappeared, reason: "container disappeared while the daemon was down"}
		if exists && !c.Running {
			f = m.exitedFailure(ctx, s, c, fmt.Sprintf("container exited with code %d%s", c.ExitCode, ExitDescription(c.ExitCode)))
		}
		m.failRunning(ctx, s, f)
	case StatusStopping:
		if exists && c.Running {
			_ = m.rt.StopContainer(ctx, c.ID, runtime.StopOptions{Timeout: m.opts.StopTimeout})
		}
		_, err := m.transition(ctx, s.ID, StatusStopped, "stopped (finished after daemon restart)", nil)
		return err
	case StatusCreating:
		return m.reconcileCreating(ctx, s, c, exists)
	}
	return nil
}

// reconcileCreating settles a start the daemon was killed in. Killed
// between creating this run's container and starting it (or while the
// runtime was still starting it, which it finishes on its own), the start
// step is redone, then the start resumes; past its deadline it fails as a
// timeout; with its container gone or exited, it fails saying so.
func (m *Manager) reconcileCreating(ctx context.Context, s Service, c runtime.ContainerState, exists bool) error {
	thisRun := runOf(c) == s.Run || c.Name == containerName(s)
	startIt := exists && c.Status == runtime.StateCreated && thisRun && (s.ContainerID == "" || c.ID == s.ContainerID)
	if !startIt && (!exists || !c.Running || (s.ContainerID != "" && c.ID != s.ContainerID)) {
		_, err := m.fail(ctx, s.ID, m.interruptedFailure(ctx, s, c, exists), nil)
		return err
	}
	if s.DeadlineAt != nil && !m.now().Before(*s.DeadlineAt) {
		_ = m.rt.StopContainer(ctx, c.ID, runtime.StopOptions{Timeout: 2 * time.Second})
		_, err := m.fail(ctx, s.ID, failure{kind: FailureTimeout, reason: fmt.Sprintf("timed out in phase %s after %s", s.Phase, m.timeoutOf(s))}, nil)
		return err
	}
	eng, err := m.catalog.Get(s.EngineType)
	if err != nil {
		return err
	}
	deadline := m.now().Add(m.opts.StartTimeout)
	if s.DeadlineAt != nil {
		deadline = *s.DeadlineAt
	}
	if s.ContainerID == "" { // killed before the record got it
		if s, err = m.col.Update(ctx, s.ID, func(x *Service) error { x.ContainerID = c.ID; return nil }); err != nil {
			return err
		}
	}
	m.resume(s, eng, c.ID, deadline, startIt)
	return nil
}

// interruptedFailure says only what happened to a start the daemon was
// killed in: a start can die before its container exists, or after
// creating it but before starting it. (A running container here is not the
// recorded one: the recorded one disappeared.)
func (m *Manager) interruptedFailure(ctx context.Context, s Service, c runtime.ContainerState, exists bool) failure {
	const prefix = "start interrupted by a daemon restart: "
	ran := exists && !c.Running && c.Status != runtime.StateCreated
	switch {
	case ran:
		return m.exitedFailure(ctx, s, c, prefix+fmt.Sprintf("container exited with code %d while the daemon was down", c.ExitCode))
	case !exists && s.ContainerID == "":
		return failure{kind: FailureInterrupted, reason: prefix + fmt.Sprintf("the daemon stopped in phase %s, before the container was created", s.Phase)}
	case exists && !c.Running:
		return failure{kind: FailureInterrupted, reason: prefix + "the container was created but never started"}
	}
	return failure{kind: FailureDisappeared, reason: prefix + "container disappeared while the daemon was down"}
}

// exitedFailure is the failure of a container that exited: its exit code,
// OOM when the runtime says it was killed for memory, and the engine's own
// lines explaining it.
func (m *Manager) exitedFailure(ctx context.Context, s Service, c runtime.ContainerState, reason string) failure {
	code := c.ExitCode
	f := failure{kind: FailureExited, reason: reason, exitCode: &code}
	if info, err := m.rt.InspectContainer(ctx, c.ID); err == nil && info.OOMKilled {
		f.kind, f.oom = FailureOOM, true
	}
	eng := m.engineOf(s.EngineType)
	f.explain(m.endLines(ctx, c, eng), eng)
	return f
}

// resume continues a start after a daemon restart: its start step first
// when the container was created but not started (startIt), in the job
// (on Kubernetes the start waits for a node and the pull, bounded by the
// start's deadline, not by the reconcile), then the readiness wait.
func (m *Manager) resume(s Service, eng engines.Engine, containerID string, deadline time.Time, startIt bool) {
	m.runJob(s.ID, deadline, func(ctx context.Context) {
		phase := s.Phase
		if phase != PhaseHealthCheck {
			phase = PhaseLoading
		}
		st := &starter{m: m, s: s, eng: eng, phase: phase, containerID: containerID}
		if startIt {
			st.phase = PhaseStart
			m.message(s.ID, s.Run, s.Phase, "daemon restarted: starting container "+shortID(containerID))
			if f := st.guarded(ctx, st.startContainer); f != nil {
				f.reason = "start interrupted by a daemon restart: " + f.reason
				m.finishStart(ctx, st, f)
				return
			}
			st.phase = phase
		}
		m.message(s.ID, s.Run, s.Phase, "daemon restarted: resuming the health check of container "+shortID(containerID))
		m.finishStart(ctx, st, st.guarded(ctx, st.waitReady))
	})
}
