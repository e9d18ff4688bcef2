package services

import (
	"slices"
	"strings"
	"testing"

	"aima/errs"
	"aima/events"
	"aima/runtime"
	"aima/runtime/fakeruntime"
)

// Stop: stopping, then stopped; the container is kept, so its logs stay
// readable, until the next start's cleanup, which keeps its last lines as
// the previous run's.
func TestStopKeepsContainerUntilNextStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.running(serving(), nil)
	res, err := h.m.Stop(h.ctx(), s.ID)
	if err != nil || res.Service.Status != StatusStopped || res.Note != "" {
		t.Fatalf("stop: %+v %v", res, err)
	}
	if st := h.statuses(s.ID); !slices.Equal(st, []Status{StatusCreating, StatusRunning, StatusStopping, StatusStopped}) {
		t.Errorf("statuses %v", st)
	}
	c, err := h.fr.InspectContainer(h.ctx(), s.ContainerID)
	if err != nil || c.Running {
		t.Fatalf("container after stop: %+v %v", c, err)
	}
	if again, err := h.m.Stop(h.ctx(), s.ID); err != nil || again.Note == "" {
		t.Errorf("second stop: %+v %v", again, err)
	}
	text, err := h.logTexts(s.ID, LogsRequest{Tail: -1})
	if err != nil || !slices.ContainsFunc(text, func(l string) bool { return strings.Contains(l, "Application startup complete") }) {
		t.Errorf("logs of the stopped container: %q %v", text, err)
	}
	h.start(s.ID)
	second := h.await(s.ID, "running again", func(x Service) bool { return x.Status == StatusRunning && x.Run == 2 })
	if len(second.PreviousLogs) == 0 || !strings.Contains(second.PreviousLogs[len(second.PreviousLogs)-1], "Application startup complete") {
		t.Errorf("previous logs %q", second.PreviousLogs)
	}
	if cs := h.fr.Containers(map[string]string{runtime.LabelService: s.ID}); len(cs) != 1 || cs[0].ID != second.ContainerID {
		t.Errorf("containers after the second start: %+v", cs)
	}
}

// Stopping a created service is a no-op that says so.
func TestStopCreated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := h.create(serving(), nil)
	res, err := h.m.Stop(h.ctx(), s.ID)
	if err != nil || res.Note == "" || res.Service.Status != StatusCreated {
		t.Fatalf("stop: %+v %v", res, err)
	}
}

// A stop the runtime refuses leaves the service failed with stop_failed
// (the container may still run), and the error reaches the caller.
func TestStopFailed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.running(serving(), nil)
	h.fr.Inject(fakeruntime.OpStop, fakeruntime.Fault{Err: errs.New(errs.Internal, "cannot kill container: permission denied")})
	if _, err := h.m.Stop(h.ctx(), s.ID); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("stop: %v", err)
	}
	wantFailed(t, h.get(s.ID), FailureStopFailed, "", "stop failed", "permission denied")
	h.fr.Clear(fakeruntime.OpStop)
	// A failed service can be stopped (its container too), which clears the
	// failure.
	res, err := h.m.Stop(h.ctx(), s.ID)
	if err != nil || res.Service.Status != StatusStopped || res.Service.Failure != "" {
		t.Fatalf("stop after failure: %+v %v", res, err)
	}
	h.container(s.ID, fakeruntime.Exited)
}

// A failed start can be started again; the new run clears the failure.
func TestStartAfterFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.create(fakeruntime.Script{Steps: []fakeruntime.Step{fakeruntime.Exit(1)}}, nil)
	h.start(s.ID)
	h.awaitStatus(s.ID, StatusFailed)
	h.fr.SetScript(map[string]string{runtime.LabelService: s.ID}, serving())
	h.start(s.ID)
	got := h.await(s.ID, "running its second run", func(x Service) bool { return x.Status == StatusRunning && x.Run == 2 })
	if got.Failure != "" || got.ExitCode != nil || len(got.LogTail) != 0 {
		t.Errorf("second run's record keeps the first failure: %+v", got)
	}
}

// Delete removes the container, the record and the history, also during a
// start; the bus's daemon-wide feed says created and deleted for each.
func TestDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	feed := h.m.Bus().Follow()
	running := h.running(serving(), nil)
	loading := h.create(loadsForever(), nil)
	h.start(loading.ID)
	h.awaitPhase(loading.ID, PhaseLoading)
	for _, s := range []Service{running, loading} {
		if _, err := h.m.Delete(h.ctx(), s.ID); err != nil {
			t.Fatalf("delete %s: %v", s.ID, err)
		}
		if _, err := h.m.Get(h.ctx(), s.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("get after delete: %v", err)
		}
		if cs := h.fr.Containers(map[string]string{runtime.LabelService: s.ID}); len(cs) != 0 {
			t.Errorf("containers after delete: %+v", cs)
		}
		if evs, err := events.NewJournal(h.store, nil).Load(s.ID); err != nil || len(evs) != 0 {
			t.Errorf("journal after delete: %d events, %v", len(evs), err)
		}
	}
	seen, ctx := map[string][]events.Type{}, h.ctx()
	for len(seen[running.ID]) == 0 || seen[running.ID][len(seen[running.ID])-1] != events.TypeDeleted ||
		len(seen[loading.ID]) == 0 || seen[loading.ID][len(seen[loading.ID])-1] != events.TypeDeleted {
		ev, err := feed.Next(ctx)
		if err != nil {
			t.Fatalf("feed: %v (seen %v)", err, seen)
		}
		seen[ev.ServiceID] = append(seen[ev.ServiceID], ev.Type)
	}
	for _, id := range []string{running.ID, loading.ID} {
		if seen[id][0] != events.TypeCreated {
			t.Errorf("service %s: first feed event %s, want created (%v)", id, seen[id][0], seen[id])
		}
	}
}

// The on-failure policy restarts a crashing engine with a growing back-off
// (restart_count, backoff_step and previous_exit say so); a stop ends it.
func TestRestartPolicyBacksOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	// It crashes as soon as a probe saw it ready, often before the start
	// has recorded running: the death is reported either way.
	crash := fakeruntime.Script{Steps: append(vllmBoot(), fakeruntime.Served(),
		fakeruntime.Stderr("vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue."), fakeruntime.Exit(1))}
	s := h.create(crash, func(c *CreateSpec) { c.RestartPolicy = RestartOnFailure })
	h.start(s.ID)
	got := h.await(s.ID, "restarted twice", func(x Service) bool { return x.RestartCount >= 2 && x.Status == StatusFailed && x.Run >= 3 })
	if got.BackoffStep < 3 || got.NextRestartAt == nil || !strings.Contains(got.Reason, "EngineDeadError") {
		t.Errorf("after three crashes: %+v", got)
	}
	// The gaps between a failure and the next start grow with the step.
	var failedAt, gaps []int64
	for _, ev := range h.m.Bus().History(s.ID, 0) {
		switch {
		case ev.Type == "status" && ev.Status == string(StatusFailed):
			failedAt = append(failedAt, ev.Time.UnixNano())
		case ev.Type == "status" && ev.Status == string(StatusCreating) && len(failedAt) > 0:
			gaps = append(gaps, ev.Time.UnixNano()-failedAt[len(failedAt)-1])
		}
	}
	for i, g := range gaps {
		if min := int64(h.opts.RestartBackoff) << i; g < min {
			t.Errorf("restart %d came %dns after the failure, before its back-off %dns", i+1, g, min)
		}
	}
	if _, err := h.m.Stop(h.ctx(), s.ID); err != nil {
		t.Fatal(err)
	}
	stopped := h.get(s.ID)
	if stopped.Status != StatusStopped || stopped.NextRestartAt != nil {
		t.Fatalf("after stop: %+v", stopped)
	}
	// The restart that was due finds the service stopped and does nothing.
	h.m.restartIfDue(s.ID, stopped.Run)
	if again := h.get(s.ID); again.Status != StatusStopped || again.Run != stopped.Run {
		t.Errorf("a due restart after the stop: %+v", again)
	}
}

// A restart that comes due while the runtime cannot list containers fails
// in cleanup, and the policy tries again (a failed start re-arms it), so
// the service runs once the runtime answers.
func TestRestartPolicyOutlastsRuntimeTrouble(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.running(serving(), func(c *CreateSpec) { c.RestartPolicy = RestartOnFailure })
	h.fr.Inject(fakeruntime.OpList, fakeruntime.Fault{Err: errs.New(errs.Unavailable, "container engine unavailable: EOF")})
	if err := h.fr.Exit(s.ContainerID, 1); err != nil {
		t.Fatal(err)
	}
	failedStart := h.await(s.ID, "a restart failed for want of the runtime", func(x Service) bool {
		return x.Status == StatusFailed && x.Failure == FailureRuntimeUnavailable && x.Phase == PhaseCleanup
	})
	if failedStart.NextRestartAt == nil {
		t.Fatalf("the failed restart did not re-arm the policy: %+v", failedStart)
	}
	h.fr.Clear(fakeruntime.OpList)
	got := h.await(s.ID, "running again", func(x Service) bool { return x.Status == StatusRunning && x.Run > failedStart.Run })
	if got.RestartCount < 2 {
		t.Errorf("restart count %d", got.RestartCount)
	}
}
