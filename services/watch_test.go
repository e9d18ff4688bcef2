package services

import (
	"slices"
	"testing"
	"time"

	"aima/errs"
	"aima/runtime"
	"aima/runtime/fakeruntime"
)

// running creates a service, starts it and waits until it runs; it returns
// the record.
func (h *harness) running(script fakeruntime.Script, adjust func(*CreateSpec)) Service {
	h.t.Helper()
	s := h.create(script, adjust)
	h.start(s.ID)
	return h.awaitStatus(s.ID, StatusRunning)
}

// The watcher turns what happens to a running service's container into a
// failed record with the kind, exit code, OOM flag and the engine's line.
func TestWatcherFailsRunningService(t *testing.T) {
	t.Parallel()
	const dead = "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue."
	cases := []struct {
		name   string
		act    func(h *harness, cid string) error
		kind   FailureKind
		code   int // -1: none
		reason []string
	}{
		{"engine crash", func(h *harness, cid string) error {
			if err := h.fr.Log(cid, "stderr", "(APIServer pid=1) ERROR 10-25 13:09:12 [core_client.py:564] "+dead); err != nil {
				return err
			}
			return h.fr.Exit(cid, 1)
		}, FailureExited, 1, []string{"container exited with code 1 while running", "EngineDeadError"}},
		// The same root cause the start path reports (one explain for
		// both), not the EngineDeadError that points at it.
		{"engine crash with its root cause above", func(h *harness, cid string) error {
			for _, l := range engineDeadLines() {
				if err := h.fr.Log(cid, "stdout", l); err != nil {
					return err
				}
			}
			return h.fr.Exit(cid, 0)
		}, FailureExited, 0, []string{"container exited with code 0 while running: RuntimeError: CUDA error: an illegal memory access was encountered"}},
		{"docker kill", func(h *harness, cid string) error { return h.fr.Kill(cid) }, FailureExited, 137, []string{"SIGKILL", "while running"}},
		{"OOM kill", func(h *harness, cid string) error { return h.fr.OOMKill(cid) }, FailureOOM, 137, []string{"(OOM killed)"}},
		// docker rm -f sends kill and die before destroy: the die decides.
		{"rm -f outside aima", func(h *harness, cid string) error { return h.fr.RemoveOutside(cid) }, FailureExited, 137, []string{"SIGKILL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.run()
			s := h.running(serving(), nil)
			if err := tc.act(h, s.ContainerID); err != nil {
				t.Fatal(err)
			}
			got := h.awaitStatus(s.ID, StatusFailed)
			wantFailed(t, got, tc.kind, "", tc.reason...)
			if tc.name == "engine crash" && got.EngineError != dead {
				t.Errorf("engine_error %q, want %q", got.EngineError, dead)
			}
			if got.ExitCode == nil || *got.ExitCode != tc.code {
				t.Errorf("exit code %v, want %d", got.ExitCode, tc.code)
			}
			if got.PreviousExit != got.Reason {
				t.Errorf("previous_exit %q, reason %q", got.PreviousExit, got.Reason)
			}
			// The liveness probe may see the closed port before the die
			// event is handled: unhealthy in between is fine.
			st := slices.DeleteFunc(h.statuses(s.ID), func(x Status) bool { return x == StatusUnhealthy })
			if !slices.Equal(st, []Status{StatusCreating, StatusRunning, StatusFailed}) {
				t.Errorf("statuses %v", h.statuses(s.ID))
			}
		})
	}
}

// When the event stream breaks, the watcher marks the state stale,
// resubscribes from the last event's time and reconciles: a container that
// died meanwhile is reported, a healthy one stays running.
func TestWatcherResubscribesAfterBreak(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	killed := h.running(serving(), nil)
	steady := h.running(serving(), nil)
	subs := h.fr.Calls(fakeruntime.OpEvents)
	h.fr.Cut()
	h.awaitFact("stale", func() bool { return !h.m.DockerReachable() })
	if s := h.get(steady.ID); !s.Stale || s.Status != StatusRunning {
		t.Errorf("during the cut: %+v", s)
	}
	if err := h.fr.Kill(killed.ContainerID); err != nil {
		t.Fatal(err)
	}
	// Nothing can know the exit yet (the liveness probe may find the port
	// closed: unhealthy, but not failed).
	if s := h.get(killed.ID); s.Status == StatusFailed {
		t.Errorf("failed while the runtime was cut: %+v", s)
	}
	h.fr.Restore()
	got := h.awaitStatus(killed.ID, StatusFailed)
	wantFailed(t, got, FailureExited, "", "code 137")
	h.awaitFact("reconciled", func() bool { return h.m.DockerReachable() })
	if s := h.get(steady.ID); s.Stale || s.Status != StatusRunning || s.ContainerID != steady.ContainerID {
		t.Errorf("after the cut: %+v", s)
	}
	if n := h.fr.Calls(fakeruntime.OpEvents); n <= subs {
		t.Errorf("events subscriptions %d, %d before the cut: no resubscribe", n, subs)
	}
	// The stream works again: a later death is seen.
	if err := h.fr.Exit(steady.ContainerID, 2); err != nil {
		t.Fatal(err)
	}
	wantFailed(t, h.awaitStatus(steady.ID, StatusFailed), FailureExited, "", "code 2")
}

// Events of a container that is not the service's current one (an earlier
// run's, removed by the next start's cleanup) change nothing.
func TestWatcherIgnoresOldContainers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.running(serving(), nil)
	if _, err := h.m.Restart(h.ctx(), s.ID, 0); err != nil {
		t.Fatal(err)
	}
	got := h.await(s.ID, "running its second run", func(x Service) bool { return x.Status == StatusRunning && x.Run == 2 })
	if got.ContainerID == s.ContainerID {
		t.Fatal("the restart kept the container")
	}
	if _, err := h.fr.InspectContainer(h.ctx(), s.ContainerID); err == nil {
		t.Error("the first run's container was not removed")
	}
	if st := h.statuses(s.ID); !slices.Equal(st, []Status{StatusCreating, StatusRunning, StatusStopping, StatusStopped, StatusCreating, StatusRunning}) {
		t.Errorf("statuses %v", st)
	}
	if c := h.container(s.ID, fakeruntime.Running); c.Labels[runtime.LabelRun] != "2" {
		t.Errorf("container labels %v", c.Labels)
	}
}

// Liveness: a failing health endpoint makes a running service unhealthy;
// passing again makes it running.
func TestLivenessUnhealthyThenRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.UnhealthyGrace = time.Hour })
	h.run()
	s := h.running(serving(), nil)
	if err := h.fr.SetHealthy(s.ContainerID, false); err != nil {
		t.Fatal(err)
	}
	u := h.awaitStatus(s.ID, StatusUnhealthy)
	if u.UnhealthySince == nil || u.Failure != "" {
		t.Errorf("unhealthy record %+v", u)
	}
	if err := h.fr.SetHealthy(s.ContainerID, true); err != nil {
		t.Fatal(err)
	}
	r := h.awaitStatus(s.ID, StatusRunning)
	if r.UnhealthySince != nil || r.ContainerID != s.ContainerID {
		t.Errorf("running again: %+v", r)
	}
}

// A wedged engine (process alive, health failing) is failed after the
// grace and its container stopped.
func TestLivenessWedged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.running(serving(), nil)
	if err := h.fr.SetHealthy(s.ContainerID, false); err != nil {
		t.Fatal(err)
	}
	got := h.awaitStatus(s.ID, StatusFailed)
	wantFailed(t, got, FailureWedged, "", "wedged")
	if got.ExitCode != nil {
		t.Errorf("exit code %v claimed for a wedged engine", *got.ExitCode)
	}
	h.container(s.ID, fakeruntime.Exited)
	if st := h.statuses(s.ID); !slices.Equal(st, []Status{StatusCreating, StatusRunning, StatusUnhealthy, StatusFailed}) {
		t.Errorf("statuses %v", st)
	}
	u, ok := h.stored(s.ID, StatusUnhealthy)
	if !ok || u.UnhealthySince == nil {
		t.Fatalf("no unhealthy record with its time: %+v", u)
	}
	if grace := got.UpdatedAt.Sub(*u.UnhealthySince); grace < h.opts.UnhealthyGrace {
		t.Errorf("failed %s after unhealthy, before the %s grace", grace, h.opts.UnhealthyGrace)
	}
}

// While the runtime is unreachable an unhealthy service is not called
// wedged (its process may be dead): it stays unhealthy past the grace, and
// once the runtime is back the truth decides.
func TestLivenessDoesNotGuessDuringCut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.running(serving(), nil)
	h.fr.Cut()
	if err := h.fr.SetHealthy(s.ContainerID, false); err != nil {
		t.Fatal(err)
	}
	h.awaitStatus(s.ID, StatusUnhealthy)
	// The liveness loop asks the runtime once the grace has passed.
	inspects := h.fr.Calls(fakeruntime.OpInspect)
	if err := h.fr.WaitCalls(h.ctx(), fakeruntime.OpInspect, inspects+1); err != nil {
		t.Fatal(err)
	}
	if got := h.get(s.ID); got.Status != StatusUnhealthy {
		t.Fatalf("during the cut: %+v", got)
	}
	h.fr.Restore()
	wantFailed(t, h.awaitStatus(s.ID, StatusFailed), FailureWedged, "", "wedged")
}

// Stopping an unhealthy service works like stopping a running one.
func TestStopUnhealthy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.UnhealthyGrace = time.Hour })
	h.run()
	s := h.running(serving(), nil)
	if err := h.fr.SetHealthy(s.ContainerID, false); err != nil {
		t.Fatal(err)
	}
	h.awaitStatus(s.ID, StatusUnhealthy)
	res, err := h.m.Stop(h.ctx(), s.ID)
	if err != nil || res.Service.Status != StatusStopped || res.Service.UnhealthySince != nil && res.Service.Status == StatusUnhealthy {
		t.Fatalf("stop: %+v %v", res, err)
	}
	h.container(s.ID, fakeruntime.Exited)
}

// A destroy event decides when the die before it could not be checked (the
// runtime did not answer the inspect): the service failed as disappeared.
func TestWatcherDestroyAfterUncheckedDie(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.UnhealthyGrace = time.Hour })
	h.run()
	s := h.running(serving(), nil)
	h.fr.Inject(fakeruntime.OpInspect, fakeruntime.Fault{Err: errs.New(errs.Unavailable, "container engine unavailable: EOF"), Times: 1})
	if err := h.fr.RemoveOutside(s.ContainerID); err != nil {
		t.Fatal(err)
	}
	wantFailed(t, h.awaitStatus(s.ID, StatusFailed), FailureDisappeared, "", "container was removed outside aima while running")
}
