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
