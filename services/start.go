package services

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"aima/engines"
	"aima/errs"
	"aima/runtime"
)

// StartResult says what a start request did.
type StartResult struct {
	Service Service
	// FromSeq is the event cursor just before this start's first event, so
	// a follower sees every phase of it.
	FromSeq uint64
	// Note is set when the request was a no-op (already running/starting).
	Note string
}

// StartOptions tune one start.
type StartOptions struct {
	// Timeout is the start's deadline; <= 0 means the configured default.
	Timeout time.Duration
	// Force skips the GPU fit check and sharing rule of the schedule
	// phase (the GPUs are still leased).
	Force bool
}

// Start begins a start in the background and returns at once. timeout <= 0
// means the configured default. Start on a running or starting service is a
// no-op that says so.
func (m *Manager) Start(ctx context.Context, ref string, timeout time.Duration) (StartResult, error) {
	return m.StartWith(ctx, ref, StartOptions{Timeout: timeout})
}

// StartWith is Start with options.
func (m *Manager) StartWith(ctx context.Context, ref string, opts StartOptions) (StartResult, error) {
	timeout := opts.Timeout
	s, err := m.Get(ctx, ref)
	if err != nil {
		return StartResult{}, err
	}
	switch s.Status {
	case StatusSleeping:
		from := m.bus.LastSeq(s.ID)
		s, err := m.Wake(ctx, s.ID)
		return StartResult{Service: s, FromSeq: from, Note: "service was sleeping: woke it up"}, err
	case StatusCreated, StatusStopped, StatusFailed:
		if s.SwapGroup != "" {
			release, err := m.serving.SwapIn(ctx, s)
			if err != nil {
				return StartResult{}, err
			}
			defer release()
		}
	}
	unlock, err := m.lockFor(ctx, s.ID)
	if err != nil {
		return StartResult{}, err
	}
	defer unlock()
	if s, err = m.col.Get(ctx, s.ID); err != nil {
		return StartResult{}, err
	}
	switch s.Status {
	case StatusRunning, StatusUnhealthy:
		return StartResult{Service: s, FromSeq: m.bus.LastSeq(s.ID), Note: "service is already running"}, nil
	case StatusCreating:
		return StartResult{Service: s, FromSeq: m.startSeq(s), Note: "a start is already in progress"}, nil
	case StatusStopping:
		return StartResult{}, errs.New(errs.Conflict, "service %s is stopping; start it again once it is stopped", s.ID)
	}
	if timeout <= 0 {
		timeout = m.opts.StartTimeout
	}
	eng, err := m.catalog.Get(s.EngineType)
	if err != nil {
		return StartResult{}, err
	}
	if s, err = m.assignPort(ctx, s); err != nil {
		return StartResult{}, err
	}
	from := m.bus.LastSeq(s.ID)
	now := m.now().UTC()
	deadline := now.Add(timeout)
	s, err = m.transition(ctx, s.ID, StatusCreating, "", func(s *Service) {
		s.Run++
		s.Phase = PhaseCleanup
		s.Image = eng.Image
		s.ExitCode, s.OOMKilled, s.LogTail, s.ReadyAt = nil, false, nil, nil
		s.StartedAt, s.DeadlineAt = &now, &deadline
	})
	if err != nil {
		return StartResult{}, err
	}
	m.launch(s, eng, deadline, opts.Force)
	return StartResult{Service: s, FromSeq: from}, nil
}

// startSeq finds the cursor before the current run's first event.
func (m *Manager) startSeq(s Service) uint64 {
	for _, ev := range m.bus.History(s.ID, 0) {
		if ev.Run == s.Run {
			return ev.Seq - 1
		}
	}
	return m.bus.LastSeq(s.ID)
}

// launch runs the start in a goroutine owned by the manager.
func (m *Manager) launch(s Service, eng engines.Engine, deadline time.Time, force bool) {
	m.runJob(s.ID, deadline, func(ctx context.Context) {
		st := &starter{m: m, s: s, eng: eng, phase: PhaseCleanup, force: force}
		f := st.guarded(ctx, st.run)
		for f != nil && ctx.Err() == nil { // on_oom retune (retune.go)
			next, again := m.retune(ctx, st.s, f, s.Run)
			if !again {
				break
			}
			st = &starter{m: m, s: next, eng: eng, phase: PhaseCleanup, force: force}
			f = st.guarded(ctx, st.run)
		}
		m.finishStart(ctx, st, f)
	})
}

// runJob runs one start (fresh or resumed) as the service's job: a
// goroutine owned by the manager, cancellable by Stop, bounded by the
// start's deadline, and registered so Stop can wait for it to end.
func (m *Manager) runJob(id string, deadline time.Time, run func(ctx context.Context)) {
	ctx, cancel := context.WithCancelCause(m.ctx)
	ctx, cancelDeadline := context.WithDeadlineCause(ctx, deadline, errStartTimeout)
	job := &startJob{cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	m.jobs[id] = job
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(job.done)
		defer cancelDeadline()
		defer cancel(nil)
		defer func() {
			m.mu.Lock()
			if m.jobs[id] == job {
				delete(m.jobs, id)
			}
			m.mu.Unlock()
		}()
		// The phases recover their own panics (starter.guarded); this
		// is for the recording of the outcome.
		defer m.Contain("recording the outcome of a start", id)
		run(ctx)
	}()
}

var errStartTimeout = errors.New("start deadline exceeded")

// failure is why a start or a run ended: the engine or the runtime.
type failure struct {
	kind       FailureKind
	reason     string
	engineLine string               // the engine's own error line, if found
	rule       *engines.FailureRule // the engine's rule that recognised it, if any
	exitCode   *int
	oom        bool
	logTail    []string
}

// finishStart records how a start ended: running, failed with a reason, or
// nothing when a stop or the daemon's shutdown ended it.
func (m *Manager) finishStart(ctx context.Context, st *starter, f *failure) {
	s := st.s
	// A record update must not be cut by the start's own context.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cause := context.Cause(ctx)
	switch {
	case f == nil:
		if m.hooks.beforeRunning != nil {
			m.hooks.beforeRunning(s)
		}
		now := m.now().UTC()
		if _, err := m.transition(bg, s.ID, StatusRunning, "health check passed", func(x *Service) {
			x.ReadyAt, x.DeadlineAt, x.Phase = &now, nil, ""
		}); err != nil {
			m.log.Warn("record running", "service", s.ID, "err", err)
		}
		return
	case errors.Is(cause, errStopRequested):
		return // Stop owns the transitions from here.
	case errors.Is(cause, errDaemonStopping):
		return // the next daemon resumes or fails this start.
	case errors.Is(cause, errStartTimeout):
		f = &failure{kind: FailureTimeout, reason: fmt.Sprintf("timed out in phase %s after %s", st.phase, m.timeoutOf(s))}
		if msg := st.noNode.message(); msg != "" && st.phase == PhaseStart {
			f = &failure{kind: FailureUnschedulable, reason: fmt.Sprintf("no node could take the pod within the start's deadline (%s): %s", m.timeoutOf(s), msg)}
		}
		if st.containerID != "" {
			_ = m.rt.StopContainer(bg, st.containerID, runtime.StopOptions{Timeout: 2 * time.Second})
			f.logTail = m.tail(bg, st.containerID, 20)
		}
	}
	m.explainMemoryFailure(bg, st.s, f)
	// The restart policy applies to failed starts too (as a crash loop
	// backs off in Kubernetes), so a start that failed while Docker was
	// unreachable is tried again.
	plan, schedule := m.restartPlan(s)
	if _, err := m.fail(bg, s.ID, *f, func(x *Service) {
		x.Phase = st.phase
		plan(x)
	}); err != nil {
		m.log.Warn("record failure", "service", s.ID, "err", err)
		return
	}
	schedule()
}

func (m *Manager) timeoutOf(s Service) time.Duration {
	if s.StartedAt == nil || s.DeadlineAt == nil {
		return 0
	}
	return s.DeadlineAt.Sub(*s.StartedAt).Round(time.Second)
}

// starter holds one start's progress.
type starter struct {
	m           *Manager
	s           Service
	eng         engines.Engine
	phase       Phase
	containerID string
	force       bool // skip the GPU fit check
	// noNode is the cluster scheduler's message while no node fits the
	// start's Pod (followSteps), empty once it is placed.
	noNode schedulerWait
}

func (st *starter) enter(ctx context.Context, p Phase, msg string) error {
	st.phase = p
	return st.m.enterPhase(ctx, st.s.ID, st.s.Run, p, msg)
}

// run executes the phases; it returns nil when the engine is ready.
func (st *starter) run(ctx context.Context) *failure {
	m, s := st.m, st.s
	fail := func(kind FailureKind, format string, args ...any) *failure {
		if ctx.Err() != nil {
			return &failure{kind: FailureInterrupted, reason: "interrupted"}
		}
		return &failure{kind: kind, reason: fmt.Sprintf(format, args...)}
	}
	if err := st.enter(ctx, PhaseCleanup, "removing stale containers of this service"); err != nil {
		return fail(FailureInternal, "%v", err)
	}
	m.keepPreviousLogs(ctx, s)
	if err := m.changeRuntime(ctx, func(ctx context.Context) error { return m.removeContainers(ctx, s.ID) }); err != nil {
		return fail(runtimeFailure(err), "cleanup: %v", err)
	}
	if f := st.schedule(ctx); f != nil {
		return f
	}
	s = st.s // with its GPU lease
	if err := st.enter(ctx, PhasePull, "checking image "+st.eng.Image); err != nil {
		return fail(FailureInternal, "%v", err)
	}
	if err := m.ensureImage(ctx, s.ID, s.Run, st.eng.Image); err != nil {
		return fail(m.pullFailure(ctx, err), "pull %s: %v", st.eng.Image, err)
	}
	if err := st.enter(ctx, PhaseCreate, "creating container"); err != nil {
		return fail(FailureInternal, "%v", err)
	}
	if !portFree(m.opts.BindHost, s.Port) {
		return fail(FailurePortInUse, "host port %d on %s is in use by another process%s", s.Port, m.opts.BindHost, m.portInUseHint(s.Port))
	}
	spec, err := m.containerSpec(s, st.eng)
	if err != nil {
		return fail(FailureInternal, "%v", err)
	}
	var id string
	err = m.changeRuntime(ctx, func(ctx context.Context) (err error) {
		id, err = m.rt.CreateContainer(ctx, spec)
		return err
	})
	if err != nil {
		return fail(runtimeFailure(err), "create container: %v", err)
	}
	if ctx.Err() != nil {
		// Cancelled while Docker created it: nobody wants it now.
		m.discard(ctx, id)
		return fail(FailureInterrupted, "interrupted")
	}
	st.containerID = id
	if _, err := m.col.Update(ctx, s.ID, func(x *Service) error { x.ContainerID = id; return nil }); err != nil {
		return fail(FailureInternal, "%v", err)
	}
	if err := st.enter(ctx, PhaseStart, "starting container "+shortID(id)); err != nil {
		return fail(FailureInternal, "%v", err)
	}
	if f := st.startContainer(ctx); f != nil {
		return f
	}
	if err := st.enter(ctx, PhaseLoading, "engine is loading the model"); err != nil {
		return fail(FailureInternal, "%v", err)
	}
	return st.waitReady(ctx)
}

// startContainer starts the start's container, following the runtime's
// steps (a node found or not, the pull) as messages of the phase.
func (st *starter) startContainer(ctx context.Context) *failure {
	m, id := st.m, st.containerID
	call := func(ctx context.Context) error { return m.rt.StartContainer(ctx, id) }
	if r, ok := m.rt.(runtime.StepReporter); ok && r.ReportsSteps() {
		// This start call waits for a node and the pull (Kubernetes):
		// the start's deadline ends that wait when it passes, not a
		// mutation grace later (a stop still gets the grace; the
		// deadline's own stop removes whatever the call left).
		if deadline, ok := ctx.Deadline(); ok {
			inner := call
			call = func(c context.Context) error {
				c, cancel := context.WithDeadlineCause(c, deadline, errStartTimeout)
				defer cancel()
				return inner(c)
			}
		}
	}
	stopSteps := st.followSteps(ctx, id)
	err := m.changeRuntime(ctx, call)
	stopSteps()
	if err == nil {
		return nil
	}
	if errors.Is(err, errStartTimeout) {
		<-ctx.Done() // the start's own deadline: the same moment, so finishStart sees it
	}
	if ctx.Err() != nil {
		return &failure{kind: FailureInterrupted, reason: "interrupted"}
	}
	kind := runtimeFailure(err)
	if errs.Is(err, errs.Conflict) {
		kind = FailurePortInUse // the runtime's word for a host port someone else publishes
	}
	if errors.Is(err, runtime.ErrImagePull) {
		kind = FailureImageUnavailable // the node pulls at start (Kubernetes)
	}
	return &failure{kind: kind, reason: fmt.Sprintf("start container: %v", err)}
}

// changeRuntime runs a runtime call of the start that changes what exists (the
// cleanup's removals, the create, the start) so that its outcome is known.
// Docker carries out a request whose client went away, so cutting the call
// when a stop or delete cancels the start would leave its effect unknown: a
// container created or started behind the stop, or a removal still in
// progress when the next call comes. The call therefore goes on for up to
// mutationGrace after the start's cancellation; Docker normally answers in
// milliseconds, and the start then acts on the answer. The daemon's
// shutdown cuts it at once (the next daemon reconciles what it finds).
func (m *Manager) changeRuntime(ctx context.Context, call func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err // cancelled before: nothing new is asked of the runtime
	}
	callCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		if errors.Is(cause, errDaemonStopping) {
			cancel(cause)
			return
		}
		t := time.AfterFunc(m.mutationGrace, func() { cancel(cause) })
		context.AfterFunc(callCtx, func() { t.Stop() })
	})
	defer stop()
	return call(callCtx)
}

// discard removes a container the start created but no longer wants (it
// was cancelled meanwhile), so no container outlives the start that made it
// unasked.
func (m *Manager) discard(ctx context.Context, id string) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.mutationGrace)
	defer cancel()
	if err := m.rt.RemoveContainer(bg, id, runtime.RemoveOptions{Force: true}); err != nil && !errs.Is(err, errs.NotFound) {
		m.log.Warn("remove the container of a cancelled start", "container", shortID(id), "err", err)
	}
}

// pullFailure tells an unreachable runtime from an image it could not get:
// a pull reports an unreachable registry as Unavailable too, so the
// runtime is asked.
func (m *Manager) pullFailure(ctx context.Context, err error) FailureKind {
	if errs.Is(err, errs.Unavailable) && m.rt.Ping(ctx) != nil {
		return FailureRuntimeUnavailable
	}
	return FailureImageUnavailable
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// containerName is the name of the container of the service's current run.
func containerName(s Service) string { return fmt.Sprintf("aima-%s-r%d", s.ID, s.Run) }

// containerSpec builds the container for one run of the service.
func (m *Manager) containerSpec(s Service, eng engines.Engine) (runtime.ContainerSpec, error) {
	gpus, visible := m.containerGPUs(s)
	served := ""
	if s.ModelPath != "" {
		if mod, err := m.models.Get(context.Background(), s.ModelID); err == nil {
			served = mod.Name
		}
	}
	args := eng.ModelArgs(s.ModelRef, served, eng.Port)
	args = append(args, eng.Args...)
	if s.SleepMode && eng.Sleep != nil {
		args = append(args, eng.Sleep.Args...)
	}
	args = append(args, s.Args...)
	env := make([]string, 0, len(eng.Env)+len(s.Env))
	for k, v := range eng.Env {
		env = append(env, k+"="+v)
	}
	if s.SleepMode && eng.Sleep != nil {
		for k, v := range eng.Sleep.Env {
			env = append(env, k+"="+v)
		}
	}
	env = withVisibleDevices(append(env, s.Env...), visible)
	spec := runtime.ContainerSpec{
		Name:          containerName(s),
		Image:         eng.Image,
		Args:          args,
		Env:           env,
		ContainerPort: eng.Port,
		HostIP:        m.opts.BindHost,
		HostPort:      s.Port,
		GPUs:          gpus,
		ShmSize:       eng.ShmSize,
		Node:          leaseNode(s),
		MemoryLimit:   eng.MemoryLimit,
		StopTimeout:   m.opts.StopTimeout,
		Labels: map[string]string{
			runtime.LabelManaged: "true",
			runtime.LabelService: s.ID,
			runtime.LabelRun:     strconv.Itoa(s.Run),
			runtime.LabelEngine:  s.EngineType,
			runtime.LabelModel:   s.ModelID,
			runtime.LabelPort:    strconv.Itoa(s.Port),
			runtime.LabelStore:   m.storeID(),
		},
	}
	if s.ModelPath != "" {
		target := "/models/" + s.ModelID
		if strings.HasSuffix(s.ModelRef, ".gguf") {
			target = s.ModelRef
		}
		spec.Mounts = []runtime.Mount{{Source: s.ModelPath, Target: target, ReadOnly: true}}
	}
	return spec, nil
}

// keepPreviousLogs saves the last lines of the previous run's container
// before the cleanup removes it, for `service logs --previous`.
func (m *Manager) keepPreviousLogs(ctx context.Context, s Service) {
	list, err := m.rt.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelService: s.ID}})
	prev, ok := newest(list)
	if err != nil || !ok {
		return
	}
	lines := m.tail(ctx, prev.ID, 200)
	_, _ = m.col.Update(ctx, s.ID, func(x *Service) error {
		x.PreviousLogs = lines
		return nil
	})
}

// removeContainers stops and removes every container of the service.
func (m *Manager) removeContainers(ctx context.Context, id string) error {
	list, err := m.rt.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelService: id}})
	if err != nil {
		return err
	}
	for _, c := range list {
		if err := m.rt.RemoveContainer(ctx, c.ID, runtime.RemoveOptions{Force: true}); err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	return nil
}

// runOf reads a container's aima.run label; 0 for a container without one
// (created before aima labelled runs).
func runOf(c runtime.ContainerState) int {
	n, err := strconv.Atoi(c.Labels[runtime.LabelRun])
	if err != nil {
		return 0
	}
	return n
}

// newest picks the container of a service's latest run: the highest
// aima.run label, and among containers without one the latest CreatedAt
// (which the runtime may report to the second only).
func newest(list []runtime.ContainerState) (runtime.ContainerState, bool) {
	if len(list) == 0 {
		return runtime.ContainerState{}, false
	}
	best := list[0]
	for _, c := range list[1:] {
		if r, b := runOf(c), runOf(best); r > b || (r == b && c.CreatedAt.After(best.CreatedAt)) {
			best = c
		}
	}
	return best, true
}
