package services

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"aima/errs"
	"aima/runtime"
	"aima/runtime/fakeruntime"
)

// down ends the manager as a daemon that is killed does: records stay as
// they are, containers go on. The returned function starts the next daemon.
func (h *harness) down() func() {
	h.closeManager()
	return h.restart2
}

func (h *harness) restart2() {
	h.m = h.newManager()
	h.run()
}

// edit changes a stored record behind the manager's back (what a daemon
// that died at that moment would have left).
func (h *harness) edit(id string, f func(*Service)) {
	h.t.Helper()
	if _, err := h.m.col.Update(h.ctx(), id, func(s *Service) error { f(s); return nil }); err != nil {
		h.t.Fatal(err)
	}
}

// Reconcile at start-up, running services: a container that still runs is
// adopted (same container, no new status); one that exited, was OOM-killed
// or was removed while the daemon was down makes the service failed.
func TestReconcileRunning(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		unhealthy bool
		meanwhile func(h *harness, cid string) error
		kind      FailureKind // "" = adopted
		reason    []string
	}{
		{name: "still running: adopted"},
		{name: "unhealthy, still running: adopted", unhealthy: true},
		{name: "exited", meanwhile: func(h *harness, cid string) error {
			if err := h.fr.Log(cid, "stderr", "RuntimeError: NCCL error: unhandled system error"); err != nil {
				return err
			}
			return h.fr.Exit(cid, 1)
		}, kind: FailureExited, reason: []string{"container exited with code 1", "NCCL error"}},
		{name: "OOM-killed", meanwhile: func(h *harness, cid string) error { return h.fr.OOMKill(cid) }, kind: FailureOOM, reason: []string{"(OOM killed)"}},
		{name: "removed", meanwhile: func(h *harness, cid string) error { return h.fr.RemoveOutside(cid) }, kind: FailureDisappeared, reason: []string{"container disappeared while the daemon was down"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(o *Options) { o.UnhealthyGrace = time.Hour })
			h.run()
			s := h.running(serving(), nil)
			if tc.unhealthy {
				if err := h.fr.SetHealthy(s.ContainerID, false); err != nil {
					t.Fatal(err)
				}
				h.awaitStatus(s.ID, StatusUnhealthy)
			}
			next := h.down()
			if tc.meanwhile != nil {
				if err := tc.meanwhile(h, s.ContainerID); err != nil {
					t.Fatal(err)
				}
			}
			before := len(h.statuses(s.ID))
			next()
			got := h.get(s.ID) // Run reconciled before it returned
			if tc.kind == "" {
				if got.Status != StatusRunning && got.Status != StatusUnhealthy || got.ContainerID != s.ContainerID {
					t.Fatalf("not adopted: %+v", got)
				}
				if after := h.statuses(s.ID); len(after) != before {
					t.Errorf("adoption changed the status: %v", after[before:])
				}
				return
			}
			wantFailed(t, got, tc.kind, "", tc.reason...)
		})
	}
}

// Reconcile at start-up, a stop in progress: it is finished.
func TestReconcileStopping(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.running(serving(), nil)
	next := h.down()
	h.edit(s.ID, func(x *Service) { x.Status = StatusStopping })
	next()
	if got := h.get(s.ID); got.Status != StatusStopped {
		t.Fatalf("after reconcile: %+v", got)
	}
	h.container(s.ID, fakeruntime.Exited)
}

// interrupted lets a start reach phase (hanging in the runtime call hang,
// if set) and ends the daemon there. It returns the record in that phase
// and what starts the next daemon; a hang fault is cleared before it.
func interrupted(t *testing.T, script fakeruntime.Script, hang fakeruntime.Op, phase Phase) (*harness, Service, func()) {
	h := newHarness(t, nil)
	h.run()
	s := h.create(script, nil)
	if hang != "" {
		h.fr.Inject(hang, fakeruntime.Fault{Hang: true})
	}
	h.start(s.ID)
	at := h.awaitPhase(s.ID, phase)
	next := h.down()
	if hang != "" {
		h.fr.Clear(hang)
	}
	return h, at, next
}

// Reconcile at start-up, a start in progress: every way the previous
// daemon can have left it.
func TestReconcileCreating(t *testing.T) {
	t.Parallel()
	t.Run("before the container was created: interrupted", func(t *testing.T) {
		t.Parallel()
		h, s, next := interrupted(t, serving(), fakeruntime.OpCreate, PhaseCreate)
		next()
		wantFailed(t, h.get(s.ID), FailureInterrupted, PhaseCreate, "the daemon stopped in phase create, before the container was created")
	})
	t.Run("created, not started: the start is redone and resumed", func(t *testing.T) {
		t.Parallel()
		h, created, next := interrupted(t, serving(), fakeruntime.OpStart, PhaseStart)
		next()
		got := h.awaitStatus(created.ID, StatusRunning)
		if got.ContainerID != created.ContainerID || got.Run != 1 {
			t.Errorf("resumed as %+v, created %s", got, created.ContainerID)
		}
	})
	t.Run("created, not started, killed before the record had the container", func(t *testing.T) {
		t.Parallel()
		h, created, next := interrupted(t, serving(), fakeruntime.OpStart, PhaseStart)
		h.edit(created.ID, func(x *Service) { x.ContainerID = "" })
		next()
		if got := h.awaitStatus(created.ID, StatusRunning); got.ContainerID != created.ContainerID {
			t.Errorf("resumed in %q, created %q", got.ContainerID, created.ContainerID)
		}
	})
	t.Run("created, not started, and the start is refused", func(t *testing.T) {
		t.Parallel()
		h, s, next := interrupted(t, serving(), fakeruntime.OpStart, PhaseStart)
		h.fr.Inject(fakeruntime.OpStart, fakeruntime.Fault{Err: errs.New(errs.Internal, "OCI runtime create failed")})
		next()
		wantFailed(t, h.awaitStatus(s.ID, StatusFailed), FailureRuntimeError, PhaseStart, "start interrupted by a daemon restart: start container", "OCI runtime")
	})
	t.Run("created by an earlier run, never started: interrupted", func(t *testing.T) {
		t.Parallel()
		h, s, next := interrupted(t, serving(), fakeruntime.OpStart, PhaseStart)
		h.edit(s.ID, func(x *Service) { x.Run = 2; x.ContainerID = "" })
		next()
		wantFailed(t, h.get(s.ID), FailureInterrupted, PhaseStart, "the container was created but never started")
	})
	t.Run("exited while the daemon was down", func(t *testing.T) {
		t.Parallel()
		h, s, next := interrupted(t, loadsForever(), "", PhaseLoading)
		if err := h.fr.Log(s.ContainerID, "stderr", "ValueError: No available memory for the cache blocks."); err != nil {
			t.Fatal(err)
		}
		if err := h.fr.Exit(s.ContainerID, 1); err != nil {
			t.Fatal(err)
		}
		next()
		got := h.get(s.ID)
		wantFailed(t, got, FailureExited, PhaseLoading, "start interrupted by a daemon restart: container exited with code 1 while the daemon was down", "No available memory")
		if got.ExitCode == nil || *got.ExitCode != 1 || len(got.LogTail) == 0 {
			t.Errorf("exit code %v, log tail %q", got.ExitCode, got.LogTail)
		}
	})
	t.Run("OOM-killed while the daemon was down", func(t *testing.T) {
		t.Parallel()
		h, s, next := interrupted(t, loadsForever(), "", PhaseLoading)
		if err := h.fr.OOMKill(s.ContainerID); err != nil {
			t.Fatal(err)
		}
		next()
		if got := h.get(s.ID); !got.OOMKilled {
			t.Errorf("not marked OOM-killed: %+v", got)
		}
		wantFailed(t, h.get(s.ID), FailureOOM, PhaseLoading, "(OOM killed)")
	})
	t.Run("removed while the daemon was down", func(t *testing.T) {
		t.Parallel()
		h, s, next := interrupted(t, loadsForever(), "", PhaseLoading)
		if err := h.fr.RemoveOutside(s.ContainerID); err != nil {
			t.Fatal(err)
		}
		next()
		wantFailed(t, h.get(s.ID), FailureDisappeared, PhaseLoading, "container disappeared while the daemon was down")
	})
	t.Run("deadline passed while the daemon was down", func(t *testing.T) {
		t.Parallel()
		h, s, next := interrupted(t, loadsForever(), "", PhaseLoading)
		h.edit(s.ID, func(x *Service) { past := time.Now().Add(-time.Second); x.DeadlineAt = &past })
		next()
		wantFailed(t, h.get(s.ID), FailureTimeout, PhaseLoading, "timed out in phase loading")
		if c, _ := h.fr.InspectContainer(h.ctx(), s.ContainerID); c.Running {
			t.Error("the timed-out container still runs")
		}
	})
	t.Run("still loading: the health check resumes", func(t *testing.T) {
		t.Parallel()
		gate := make(chan struct{})
		h, s, next := interrupted(t, loadsUntil(gate), "", PhaseLoading)
		startedAt := h.startedAt(s.ContainerID)
		next()
		h.await(s.ID, "resuming", func(Service) bool {
			return slices.ContainsFunc(h.messages(s.ID), func(m string) bool { return strings.Contains(m, "resuming the health check") })
		})
		close(gate)
		got := h.awaitStatus(s.ID, StatusRunning)
		if got.ContainerID != s.ContainerID || got.DeadlineAt != nil || got.ReadyAt == nil {
			t.Errorf("resumed start ended as %+v", got)
		}
		if c := h.container(s.ID, fakeruntime.Running); !c.StartedAt.Equal(startedAt) {
			t.Error("the container was restarted")
		}
	})
}

func (h *harness) startedAt(id string) time.Time {
	c, err := h.fr.InspectContainer(h.ctx(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c.StartedAt
}

// A reconcile while this daemon's own start runs (after the runtime came
// back) leaves that start alone.
func TestReconcileSkipsOwnStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	gate := make(chan struct{})
	s := h.create(loadsUntil(gate), nil)
	h.start(s.ID)
	h.awaitPhase(s.ID, PhaseLoading)
	h.fr.Cut()
	h.awaitFact("stale", func() bool { return !h.m.DockerReachable() })
	h.fr.Restore()
	// Reachable again means the watcher resubscribed and reconciled.
	h.awaitFact("reconciled", h.m.DockerReachable)
	close(gate)
	h.awaitStatus(s.ID, StatusRunning)
	if st := h.statuses(s.ID); !slices.Equal(st, []Status{StatusCreating, StatusRunning}) {
		t.Errorf("statuses %v", st)
	}
}

// Services that are created, stopped or failed are left as they are.
func TestReconcileLeavesSettledServices(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	created := h.create(serving(), nil)
	stopped := h.running(serving(), nil)
	if _, err := h.m.Stop(h.ctx(), stopped.ID); err != nil {
		t.Fatal(err)
	}
	failed := h.create(fakeruntime.Script{Steps: []fakeruntime.Step{fakeruntime.Exit(3)}}, nil)
	h.start(failed.ID)
	h.awaitStatus(failed.ID, StatusFailed)
	before := map[string]Service{}
	for _, s := range []Service{created, stopped, failed} {
		before[s.ID] = h.get(s.ID)
	}
	h.restart()
	for id, b := range before {
		if got := h.get(id); got.Status != b.Status || got.Reason != b.Reason || !got.UpdatedAt.Equal(b.UpdatedAt) {
			t.Errorf("%s changed: %+v, was %+v", id, got, b)
		}
	}
}

// A service's newest container is the one with the highest aima.run label,
// whatever the (one-second) creation times say: reconcile, logs and the
// previous-run logs all pick it.
func TestNewestContainerByRunLabel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.create(serving(), nil)
	h.closeManager()
	// Run 2's container was created before run 1's (same second, or even
	// earlier): only the label tells them apart.
	mk := func(run int, line string) string {
		labels := map[string]string{runtime.LabelManaged: "true", runtime.LabelService: s.ID, runtime.LabelRun: strconv.Itoa(run)}
		h.fr.SetScript(labels, fakeruntime.Serve())
		id, err := h.fr.CreateContainer(h.ctx(), runtime.ContainerSpec{Name: "r" + strconv.Itoa(run), Image: engineImage, Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.fr.StartContainer(h.ctx(), id); err != nil {
			t.Fatal(err)
		}
		if err := h.fr.Log(id, "stdout", line); err != nil {
			t.Fatal(err)
		}
		return id
	}
	mk(2, "run two")
	first := mk(1, "run one")
	if err := h.fr.Exit(first, 0); err != nil {
		t.Fatal(err)
	}
	h.edit(s.ID, func(x *Service) { x.Status, x.Run, x.ContainerID = StatusRunning, 2, "" })
	h.restart2()
	if got := h.get(s.ID); got.Status != StatusRunning {
		t.Fatalf("reconcile took run 1's exited container for the newest: %+v", got)
	}
	text, err := h.logTexts(s.ID, LogsRequest{Tail: -1})
	if err != nil || !slices.Equal(text, []string{"run two"}) {
		t.Errorf("logs %q, want run two's", text)
	}
	h.m.keepPreviousLogs(h.ctx(), h.get(s.ID))
	if got := h.get(s.ID).PreviousLogs; !slices.Equal(got, []string{"run two"}) {
		t.Errorf("previous logs %q, want run two's", got)
	}
}
