package faults

import (
	"strings"
	"testing"
	"time"
)

// Case 1: a container killed with `docker kill` while running becomes
// failed with exit code 137 and a SIGKILL reason, within a second.
func TestFaultContainerKilledWhileRunning(t *testing.T) {
	e := fltSetup(t)
	fltSummarizeLatencies(t)
	fltEach(t, func(t *testing.T, rep int) {
		id := e.create(t, nil)
		s := e.startWait(t, id)
		fltKill(t, s.ContainerID)
		s = e.d.waitStatus(t, id, 15*time.Second, "failed")
		if s.ExitCode == nil || *s.ExitCode != 137 {
			t.Errorf("exit code %v, want 137: %v", s.ExitCode, s)
		}
		if !strings.Contains(s.Reason, "SIGKILL") || !strings.Contains(s.Reason, "while running") || s.Failure != "exited" {
			t.Errorf("%v: want failure exited, the reason saying SIGKILL while running", s)
		}
		e.d.failedLatency(t, "docker kill, running", s)
		fltAssertOneContainer(t, s)
	})
}

// Case 1: a container killed during a start fails the start at once with
// the exit code and the phase, never leaving the service creating. Loading
// is the start phase a test hits reliably (the simulator loads for a
// minute); "earliest" kills the container the moment Docker reports it
// running, which lands in phase start or loading.
func TestFaultContainerKilledDuringStart(t *testing.T) {
	e := fltSetup(t)
	fltSummarizeLatencies(t)
	slow := map[string]string{"SIM_STARTUP": "60s", "SIM_TIME_SCALE": "1"}
	t.Run("loading", func(t *testing.T) {
		fltEach(t, func(t *testing.T, rep int) {
			id := e.create(t, fltCopyEnv(slow))
			e.d.MustCLI(t, "service", "start", id)
			s := e.d.waitFor(t, id, 30*time.Second, "loading", func(s fltSvc) bool {
				return s.Status == "creating" && s.Phase == "loading"
			})
			time.Sleep(200 * time.Millisecond) // well inside the engine's load
			fltKill(t, s.ContainerID)
			s = e.d.waitFor(t, id, 15*time.Second, "failed", func(s fltSvc) bool { return s.Status != "creating" })
			if s.Status != "failed" {
				t.Fatalf("after kill during loading: %v, want failed", s)
			}
			if s.ExitCode == nil || *s.ExitCode != 137 || s.Phase != "loading" {
				t.Errorf("want exit code 137 in phase loading: %v", s)
			}
			if !strings.Contains(s.Reason, "SIGKILL") || !strings.Contains(s.Reason, "during loading") {
				t.Errorf("reason %q: want SIGKILL during loading", s.Reason)
			}
			e.d.failedLatency(t, "docker kill, loading", s)
			fltAssertOneContainer(t, s)
		})
	})
	t.Run("earliest", func(t *testing.T) {
		fltEach(t, func(t *testing.T, rep int) {
			id := e.create(t, fltCopyEnv(slow))
			e.d.MustCLI(t, "service", "start", id)
			var cid string
			deadline := time.Now().Add(30 * time.Second)
			for cid == "" {
				for _, c := range fltContainers(t, id) {
					if c.State == "running" {
						cid = c.ID
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no running container for %s after 30s", id)
				}
			}
			fltKill(t, cid)
			s := e.d.waitFor(t, id, 15*time.Second, "settled", func(s fltSvc) bool { return s.Status != "creating" })
			if s.Status != "failed" || s.ExitCode == nil || *s.ExitCode != 137 {
				t.Fatalf("after kill at container start: %v, want failed with exit code 137", s)
			}
			if s.Phase != "start" && s.Phase != "loading" {
				t.Errorf("phase %q, want start or loading", s.Phase)
			}
			t.Logf("killed in phase %s", s.Phase)
			e.d.failedLatency(t, "docker kill, earliest", s)
			fltAssertOneContainer(t, s)
		})
	})
}

// Case 2: the engine's own failures. crash-after: the engine dies while
// running (its CUDA error, vLLM's EngineDeadError pointing at it, then its
// watchdog exits the process);
// oom-load: the weights do not fit while loading.
func TestFaultSimulatorFailures(t *testing.T) {
	e := fltSetup(t)
	fltSummarizeLatencies(t)
	t.Run("crash-after", func(t *testing.T) {
		fltEach(t, func(t *testing.T, rep int) {
			// 20s × 0.05: the engine dies about a second after it is ready.
			id := e.create(t, map[string]string{"SIM_FAIL": "crash-after", "SIM_FAIL_AFTER": "20s"})
			// The engine may already be dying when --wait returns.
			e.d.MustCLI(t, "service", "start", id, "--wait", "--timeout", "120")
			s := e.d.waitStatus(t, id, 30*time.Second, "failed")
			// The root cause the engine logged above vLLM's EngineDeadError
			// (which only says to look above), as a start's failure has it.
			if !strings.Contains(s.Reason, "while running: RuntimeError: CUDA error: an illegal memory access was encountered") {
				t.Errorf("reason %q: want the engine's root cause (the CUDA error), while running", s.Reason)
			}
			if s.ExitCode == nil {
				t.Errorf("no exit code: %v", s)
			}
			e.d.failedLatency(t, "engine crash, running", s)
			fltAssertOneContainer(t, s)
		})
	})
	t.Run("oom-load", func(t *testing.T) {
		fltEach(t, func(t *testing.T, rep int) {
			id := e.create(t, map[string]string{"SIM_FAIL": "oom-load"})
			r := e.d.CLI(t, "service", "start", id, "--wait", "--timeout", "120")
			if r.Code == 0 {
				t.Fatalf("start --wait of an OOM-at-load engine exited 0:\n%s", r.Stderr)
			}
			s := e.d.mustStatus(t, id)
			if s.Status != "failed" || s.Phase != "loading" {
				t.Fatalf("after oom-load: %v, want failed in loading", s)
			}
			if !strings.Contains(s.Reason, "OutOfMemoryError") {
				t.Errorf("reason %q: want the OutOfMemoryError line", s.Reason)
			}
			if s.ExitCode == nil || *s.ExitCode != 1 {
				t.Errorf("exit code %v, want 1", s.ExitCode)
			}
			if !strings.Contains(r.Stderr, "OutOfMemoryError") {
				t.Errorf("start --wait did not print the reason:\n%s", r.Stderr)
			}
			e.d.failedLatency(t, "engine OOM, loading", s)
			fltAssertOneContainer(t, s)
		})
	})
}

// Case 7: a wedged engine (process alive, /health failing) is reported
// unhealthy by the liveness probe, then failed after unhealthy_grace (2s
// here), and its container is stopped.
func TestFaultWedgedEngine(t *testing.T) {
	e := fltSetup(t)
	fltEach(t, func(t *testing.T, rep int) {
		id := e.create(t, map[string]string{"SIM_FAIL": "wedge-after", "SIM_FAIL_AFTER": "20s"})
		e.d.MustCLI(t, "service", "start", id, "--wait", "--timeout", "120")
		e.d.waitFor(t, id, 30*time.Second, "unhealthy", func(s fltSvc) bool { return s.Status == "unhealthy" || s.Status == "failed" })
		s := e.d.waitStatus(t, id, 30*time.Second, "failed")
		if !strings.Contains(s.Reason, "wedged") || s.Failure != "wedged" {
			t.Errorf("%v: want failure wedged, the reason saying so", s)
		}
		evs := e.d.events(t, id)
		u, f := fltStatusEvents(evs, "unhealthy"), fltStatusEvents(evs, "failed")
		if len(u) == 0 || len(f) == 0 {
			t.Fatalf("want unhealthy then failed events:\n%s", e.d.eventsText(id))
		}
		grace := f[len(f)-1].Time.Sub(u[0].Time)
		t.Logf("unhealthy → failed after %s (grace 2s, liveness interval 300ms)", grace.Round(time.Millisecond))
		if grace < 2*time.Second {
			t.Errorf("failed %s after unhealthy, before the 2s grace", grace)
		}
		// The wedged container is stopped so the policy (or the operator)
		// can act; the record agrees with Docker.
		deadline := time.Now().Add(15 * time.Second)
		for fltInspect(t, s.ContainerID).Running && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		s = e.d.mustStatus(t, id)
		if s.Status != "failed" {
			t.Fatalf("after the wedged container stopped: %v", s)
		}
		fltAssertOneContainer(t, s)
	})
}

// Case 7: restart policy on-failure with an engine that crashes a second
// after it is ready: restart_count grows, the back-off between a failure and
// the next start doubles (restart_backoff 1s: 1s, 2s, 4s), previous_exit is
// kept and `service logs --previous` prints the previous run's lines.
func TestFaultRestartBackoff(t *testing.T) {
	t.Parallel() // its own daemon, store and containers: it runs beside the other long cases
	e := fltSetup(t)
	fltEach(t, func(t *testing.T, rep int) {
		id := e.create(t, map[string]string{"SIM_FAIL": "crash-after", "SIM_FAIL_AFTER": "20s"}, "--restart-policy", "on-failure")
		e.d.MustCLI(t, "service", "start", id, "--wait", "--timeout", "120")
		s := e.d.waitFor(t, id, 60*time.Second, "restarted twice and running again", func(s fltSvc) bool {
			return s.RestartCount >= 2 && s.Run >= 3 && s.Status == "running"
		})
		if !strings.Contains(s.PreviousExit, "RuntimeError: CUDA error: an illegal memory access was encountered") {
			t.Errorf("previous_exit %q: want the previous run's reason with the engine's root cause", s.PreviousExit)
		}
		evs := e.d.events(t, id)
		// gap(n) = from run n's failure to run n+1's start.
		var gaps []time.Duration
		for run := 1; run <= 2; run++ {
			var failedAt, nextAt time.Time
			for _, ev := range evs {
				if ev.Type == "status" && ev.Status == "failed" && ev.Run == run && failedAt.IsZero() {
					failedAt = ev.Time
				}
				if ev.Type == "status" && ev.Status == "creating" && ev.Run == run+1 && nextAt.IsZero() {
					nextAt = ev.Time
				}
			}
			if failedAt.IsZero() || nextAt.IsZero() {
				t.Fatalf("run %d: no failed → creating pair in:\n%s", run, e.d.eventsText(id))
			}
			gaps = append(gaps, nextAt.Sub(failedAt))
		}
		t.Logf("back-off gaps: %s, %s", gaps[0].Round(time.Millisecond), gaps[1].Round(time.Millisecond))
		if gaps[0] < time.Second || gaps[1] < 2*time.Second || gaps[1] <= gaps[0] {
			t.Errorf("back-off gaps %v: want ≥1s, then ≥2s and growing", gaps)
		}
		prev := e.d.MustCLI(t, "service", "logs", id, "--previous")
		if len(strings.TrimSpace(prev.Stdout)) == 0 || !strings.Contains(prev.Stdout, "EngineDeadError") {
			t.Errorf("logs --previous: want the previous run's lines with its EngineDeadError:\n%s", prev.Stdout)
		}
		// Stop ends the cycle: no restart after an operator's stop.
		e.d.MustCLI(t, "service", "stop", id)
		s = e.d.mustStatus(t, id)
		time.Sleep(3 * time.Second)
		if s2 := e.d.mustStatus(t, id); s2.Status != "stopped" || s2.Run != s.Run {
			t.Errorf("after stop: %v (was %v); the policy must not restart a stopped service", s2, s)
		}
	})
}

func fltCopyEnv(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
