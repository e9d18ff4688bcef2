package services

import (
	"testing"
	"time"
)

// The on-failure back-off doubles per restart in a streak, caps at 5
// minutes, and a run of 10 minutes starts a new streak.
func TestRestartPlanBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := &Manager{opts: Options{RestartBackoff: 10 * time.Second}, now: func() time.Time { return now }}
	delay := func(s Service) (time.Duration, int) {
		plan, _ := m.restartPlan(s)
		var x Service
		plan(&x)
		if x.NextRestartAt == nil {
			return -1, x.BackoffStep
		}
		return x.NextRestartAt.Sub(now), x.BackoffStep
	}
	if d, _ := delay(Service{RestartPolicy: RestartNo}); d != -1 {
		t.Fatalf("policy no planned a restart in %s", d)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	s := Service{RestartPolicy: RestartOnFailure}
	for i, w := range want {
		d, step := delay(s)
		if d != w || step != i+1 {
			t.Fatalf("restart %d: delay %s step %d, want %s step %d", i+1, d, step, w, i+1)
		}
		s.BackoffStep = step
	}
	ready := now.Add(-11 * time.Minute)
	s.ReadyAt = &ready
	if d, step := delay(s); d != 10*time.Second || step != 1 {
		t.Fatalf("after a 10-minute run: delay %s step %d, want 10s step 1", d, step)
	}
}

// A restart the on-failure policy scheduled (next_restart_at) survives a
// daemon restart: the next daemon's reconcile schedules it again, at its
// time or at once when that has passed. Here the first daemon's back-off
// is an hour; the record is then made due in a moment (and, for the other
// service, overdue) while no daemon runs.
func TestPendingRestartSurvivesDaemonRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.RestartBackoff = time.Hour })
	h.run()
	policy := func(c *CreateSpec) { c.RestartPolicy = RestartOnFailure }
	soon, overdue := h.running(serving(), policy), h.running(serving(), policy)
	for _, s := range []Service{soon, overdue} {
		if err := h.fr.Exit(s.ContainerID, 1); err != nil {
			t.Fatal(err)
		}
		if got := h.awaitStatus(s.ID, StatusFailed); got.NextRestartAt == nil || got.RestartCount != 0 {
			t.Fatalf("after the crash: %+v", got)
		}
	}
	next := h.down()
	h.edit(soon.ID, func(x *Service) { at := time.Now().Add(30 * time.Millisecond).UTC(); x.NextRestartAt = &at })
	h.edit(overdue.ID, func(x *Service) { at := time.Now().Add(-time.Minute).UTC(); x.NextRestartAt = &at })
	next()
	for _, s := range []Service{soon, overdue} {
		got := h.await(s.ID, "restarted by the policy", func(x Service) bool { return x.Status == StatusRunning && x.Run == 2 })
		if got.RestartCount != 1 || got.NextRestartAt != nil {
			t.Errorf("after the restart: %+v", got)
		}
	}
	// A reconcile (as after a lost event stream) does not schedule a
	// restart twice: each service ran exactly twice.
	if err := h.m.Reconcile(h.ctx()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Service{soon, overdue} {
		if got := h.get(s.ID); got.Run != 2 || got.RestartCount != 1 {
			t.Errorf("after another reconcile: %+v", got)
		}
	}
}

// next_restart_at is a fact of the failed status: leaving it clears it,
// whether by a stop or by a start by hand.
func TestLeavingFailedClearsNextRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.RestartBackoff = time.Hour })
	h.run()
	policy := func(c *CreateSpec) { c.RestartPolicy = RestartOnFailure }
	for _, leave := range []string{"stop", "start"} {
		s := h.running(serving(), policy)
		if err := h.fr.Exit(s.ContainerID, 1); err != nil {
			t.Fatal(err)
		}
		if got := h.awaitStatus(s.ID, StatusFailed); got.NextRestartAt == nil {
			t.Fatalf("failed without a planned restart: %+v", got)
		}
		var got Service
		if leave == "stop" {
			res, err := h.m.Stop(h.ctx(), s.ID)
			if err != nil {
				t.Fatal(err)
			}
			got = res.Service
		} else {
			got = h.start(s.ID).Service
		}
		if got.NextRestartAt != nil || got.Failure != "" {
			t.Errorf("%s of a failed service: next_restart_at %v, failure %q", leave, got.NextRestartAt, got.Failure)
		}
	}
}
