package faults

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/internal/testenv"
)

// fltSlowStart makes the simulator load for d in real time.
func fltSlowStart(d string) map[string]string {
	return map[string]string{"SIM_STARTUP": d, "SIM_TIME_SCALE": "1"}
}

// waitLoading waits until a start is in phase loading and returns the record.
func (d *fltDaemon) waitLoading(t *testing.T, id string) fltSvc {
	t.Helper()
	s := d.waitFor(t, id, 30*time.Second, "creating in phase loading", func(s fltSvc) bool {
		return s.Status == "creating" && s.Phase == "loading" && s.ContainerID != ""
	})
	return s
}

// fltWaitEngineReady waits until the container's own log says the engine
// serves (the daemon may be down meanwhile).
func fltWaitEngineReady(t *testing.T, containerID string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, _ := exec.Command("docker", "logs", containerID).CombinedOutput()
		if strings.Contains(string(out), "Application startup complete.") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine in %.12s not ready after %s:\n%s", containerID, timeout, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settled waits until the service is out of creating after a restart,
// checking it never stays there.
func (d *fltDaemon) settled(t *testing.T, id string) fltSvc {
	t.Helper()
	return d.waitFor(t, id, 60*time.Second, "settled (not creating)", func(s fltSvc) bool {
		return s.Status != "creating" && s.Status != "stopping"
	})
}

// Case 3: the daemon SIGKILLed during a start, then started again on the
// same data dir. A start whose container still loads is resumed (same
// container, the load is not lost) and ends running; one whose container
// died while the daemon was down ends failed with the exit code; a start
// killed right after it was accepted ends running or failed, never creating.
// Always one container for the service at most, never an orphan.
func TestFaultDaemonKilledDuringStart(t *testing.T) {
	t.Parallel() // its own daemon, store and containers: it runs beside the other long cases
	e := fltSetup(t)
	d := e.d

	// Restart at once: the resumed start finishes the model load.
	t.Run("loading/resume", func(t *testing.T) {
		fltEach(t, func(t *testing.T, rep int) {
			id := e.create(t, fltSlowStart("6s"))
			d.MustCLI(t, "service", "start", id)
			before := d.waitLoading(t, id)
			started := fltInspect(t, before.ContainerID).StartedAt
			d.Kill(t)
			d.Restart(t)
			if s := d.mustStatus(t, id); s.Status != "creating" && s.Status != "running" {
				t.Fatalf("after restart: %v, want the start resumed", s)
			}
			s := d.settled(t, id)
			if s.Status != "running" {
				t.Fatalf("resumed start ended %v, want running", s)
			}
			if s.ContainerID != before.ContainerID || fltInspect(t, s.ContainerID).StartedAt != started {
				t.Fatalf("container %.12s (was %.12s) or its start time changed: the load was not resumed", s.ContainerID, before.ContainerID)
			}
			if !strings.Contains(d.eventsText(id), "resuming the health check") {
				t.Errorf("no resume event in history:\n%s", d.eventsText(id))
			}
			fltAssertOneContainer(t, s)
			d.assertNoOrphans(t, id)
			d.MustCLI(t, "service", "stop", id)
		})
	})

	// The engine finished loading while the daemon was down.
	t.Run("loading/ready-while-down", func(t *testing.T) {
		fltEach(t, func(t *testing.T, rep int) {
			id := e.create(t, fltSlowStart("3s"))
			d.MustCLI(t, "service", "start", id)
			before := d.waitLoading(t, id)
			d.Kill(t)
			fltWaitEngineReady(t, before.ContainerID, 30*time.Second)
			d.Restart(t)
			s := d.settled(t, id)
			if s.Status != "running" || s.ContainerID != before.ContainerID {
				t.Fatalf("after restart: %v, want running in container %.12s", s, before.ContainerID)
			}
			fltAssertOneContainer(t, s)
			d.assertNoOrphans(t, id)
			d.MustCLI(t, "service", "stop", id)
		})
	})

	// The container died while the daemon was down.
	t.Run("loading/died-while-down", func(t *testing.T) {
		fltEach(t, func(t *testing.T, rep int) {
			id := e.create(t, fltSlowStart("60s"))
			d.MustCLI(t, "service", "start", id)
			before := d.waitLoading(t, id)
			d.Kill(t)
			fltKill(t, before.ContainerID)
			d.Restart(t)
			s := d.mustStatus(t, id)
			if s.Status != "failed" {
				t.Fatalf("after restart: %v, want failed at once (reconciled before serving)", s)
			}
			if s.ExitCode == nil || *s.ExitCode != 137 || !strings.Contains(s.Reason, "while the daemon was down") {
				t.Errorf("want exit code 137 and a reason saying it happened while the daemon was down: %v", s)
			}
			fltAssertOneContainer(t, s)
			d.assertNoOrphans(t, id)
		})
	})

	// Killed right after `start` returned, or a moment later: the early
	// phases (cleanup, pull, create, start) last milliseconds, so each
	// repetition waits a different time before the kill to spread over them.
	t.Run("early-phases", func(t *testing.T) {
		delays := []time.Duration{0, 30 * time.Millisecond, 120 * time.Millisecond, 250 * time.Millisecond, 60 * time.Millisecond}
		fltEach(t, func(t *testing.T, rep int) {
			id := e.create(t, fltSlowStart("4s"))
			delay := delays[(rep-1)%len(delays)]
			d.MustCLI(t, "service", "start", id)
			time.Sleep(delay)
			d.Kill(t)
			d.Restart(t)
			s := d.settled(t, id)
			phase := fltPhaseAtKill(d.events(t, id))
			t.Logf("killed %s after start returned, in phase %s: ended %v", delay, phase, s)
			switch s.Status {
			case "running":
				fltAssertOneContainer(t, s)
			case "failed":
				if !strings.Contains(s.Reason, "daemon") {
					t.Errorf("reason %q: want it to say the daemon restart interrupted the start", s.Reason)
				}
				cs := fltContainers(t, id)
				if len(cs) > 1 {
					t.Fatalf("%d containers after an interrupted start: %+v", len(cs), cs)
				}
				// Docker may finish a start the dead daemon asked for: a
				// failed service must not have a running container, now
				// or a moment later.
				if len(cs) == 1 {
					time.Sleep(time.Second)
					if st := fltInspect(t, cs[0].ID); st.Running {
						t.Errorf("service is failed but its container runs: %+v", st)
					}
				}
				// An exit code is only claimed for a container that ran.
				if s.ExitCode != nil && (len(cs) == 0 || fltInspect(t, cs[0].ID).StartedAt.Year() < 2000) {
					t.Errorf("failed record claims exit code %d for a container that never ran: %v", *s.ExitCode, s)
				}
				// The operator starts it again: one container, running.
				d.MustCLI(t, "service", "start", id, "--wait", "--timeout", "60")
				s = d.mustStatus(t, id)
				if s.Status != "running" {
					t.Fatalf("start after the interrupted one: %v", s)
				}
				fltAssertOneContainer(t, s)
			default:
				t.Fatalf("after restart: %v, want running or failed", s)
			}
			d.assertNoOrphans(t, id)
			d.MustCLI(t, "service", "stop", id)
		})
	})
}

// Case 4: the daemon SIGKILLed while services run, then restarted: they are
// still running in the same containers (adopted, not restarted), `stop`
// works, and a container removed while the daemon was down is reported.
func TestFaultDaemonKilledWhileRunning(t *testing.T) {
	t.Parallel() // its own daemon, store and containers: it runs beside the other long cases
	e := fltSetup(t)
	d := e.d
	fltEach(t, func(t *testing.T, rep int) {
		ids := []string{e.create(t, nil), e.create(t, nil)}
		gone := e.create(t, nil)
		before := map[string]fltSvc{}
		started := map[string]time.Time{}
		for _, id := range append(ids, gone) {
			before[id] = e.startWait(t, id)
			started[id] = fltInspect(t, before[id].ContainerID).StartedAt
		}
		d.Kill(t)
		if out, err := exec.Command("docker", "rm", "-f", before[gone].ContainerID).CombinedOutput(); err != nil {
			t.Fatalf("docker rm: %v: %s", err, out)
		}
		d.Restart(t)
		for _, id := range ids {
			s := d.mustStatus(t, id)
			if s.Status != "running" || s.ContainerID != before[id].ContainerID {
				t.Fatalf("after restart: %v, want running in %.12s", s, before[id].ContainerID)
			}
			if st := fltInspect(t, s.ContainerID); !st.Running || st.StartedAt != started[id] {
				t.Fatalf("container %.12s was restarted or stopped: %+v", s.ContainerID, st)
			}
			fltAssertOneContainer(t, s)
		}
		s := d.mustStatus(t, gone)
		if s.Status != "failed" || s.Failure != "disappeared" || !strings.Contains(s.Reason, "container disappeared while the daemon was down") {
			t.Errorf("service whose container was removed while the daemon was down: %v", s)
		}
		d.assertNoOrphans(t, append(ids, gone)...)
		// Liveness still runs on adopted services: give it a few rounds.
		time.Sleep(time.Second)
		for _, id := range ids {
			if s := d.mustStatus(t, id); s.Status != "running" {
				t.Fatalf("adopted service after a few liveness rounds: %v", s)
			}
			d.MustCLI(t, "service", "stop", id)
			s := d.mustStatus(t, id)
			if s.Status != "stopped" {
				t.Fatalf("after stop: %v", s)
			}
			if st := fltInspect(t, s.ContainerID); st.Running {
				t.Fatalf("stopped service's container still runs")
			}
		}
	})
}

// Case 8: kill -9 during a burst of concurrent `service create` calls over
// HTTP: the store opens again and every create that was acknowledged (HTTP
// 200 with the new record) is there.
func TestFaultStoreDurability(t *testing.T) {
	e := fltSetup(t)
	d := e.d
	fltEach(t, func(t *testing.T, rep int) {
		var mu sync.Mutex
		acked := map[string]bool{}
		var nErr int
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					code, body, err := d.Post("/api/service/create", map[string]any{
						"model_id": e.modelID, "engine_type": "vllm", "name": fmt.Sprintf("burst-r%d-w%d-%d", rep, w, i),
					})
					if err != nil || code != 200 {
						mu.Lock()
						nErr++
						mu.Unlock()
						if err != nil { // the daemon is gone
							return
						}
						continue
					}
					var s fltSvc
					if json.Unmarshal(body, &s) == nil && s.ID != "" {
						mu.Lock()
						acked[s.ID] = true
						mu.Unlock()
					}
				}
			}()
		}
		// Kill once the burst is well under way.
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= 20+10*rep || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		d.Kill(t)
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(acked) == 0 {
			t.Fatal("no create was acknowledged before the kill")
		}
		d.Restart(t)
		list := testenv.DecodeJSON[testenv.List[fltSvc]](t, d.MustCLI(t, "service", "list", "-o", "json").Stdout)
		have := map[string]fltSvc{}
		for _, s := range list.Items {
			have[s.ID] = s
		}
		missing := 0
		for id := range acked {
			s, ok := have[id]
			if !ok {
				missing++
				t.Errorf("acknowledged service %s is missing after kill -9", id)
			} else if s.Status != "created" {
				t.Errorf("service %s: %v, want created", id, s)
			}
		}
		extra := 0
		for _, s := range list.Items {
			if strings.HasPrefix(s.Name, fmt.Sprintf("burst-r%d-", rep)) && !acked[s.ID] {
				extra++ // written, but the kill came before the answer
			}
		}
		t.Logf("burst: %d creates acknowledged, %d cut by the kill; after restart all acknowledged present: %v (%d missing), plus %d written but unacknowledged",
			len(acked), nErr, missing == 0, missing, extra)
		if list.Total != len(list.Items) {
			t.Errorf("list total %d but %d items", list.Total, len(list.Items))
		}
	})
}

// Case 9: SIGTERM while a service runs and a `start --wait` is in flight:
// the daemon exits 0 within a bound, the containers keep running, and the
// next daemon adopts the running one and resumes the start.
func TestFaultGracefulShutdown(t *testing.T) {
	t.Parallel() // its own daemon, store and containers: it runs beside the other long cases
	e := fltSetup(t)
	d := e.d
	const bound = 15 * time.Second
	fltEach(t, func(t *testing.T, rep int) {
		run := e.create(t, nil)
		runBefore := e.startWait(t, run)
		loading := e.create(t, fltSlowStart("8s"))
		waitDone := make(chan testenv.Result, 1)
		go func() { waitDone <- d.RunCLI("service", "start", loading, "--wait", "--timeout", "120") }()
		loadBefore := d.waitLoading(t, loading)

		code, took := d.Term(t, bound)
		t.Logf("SIGTERM: daemon exited %d after %s", code, took.Round(time.Millisecond))
		if code != 0 {
			t.Fatalf("daemon exit code %d after SIGTERM, want 0", code)
		}
		select {
		case r := <-waitDone:
			t.Logf("in-flight start --wait ended with exit %d: %s", r.Code, strings.TrimSpace(fltLastLine(r.Stderr)))
			if r.Code != 5 || !strings.Contains(r.Stderr, "shutting down") {
				t.Errorf("in-flight start --wait: exit %d, stderr %q; want exit 5 (unavailable) saying the daemon is shutting down", r.Code, r.Stderr)
			}
		case <-time.After(bound):
			t.Fatal("the in-flight start --wait did not end with the daemon")
		}
		for _, c := range []string{runBefore.ContainerID, loadBefore.ContainerID} {
			if !fltInspect(t, c).Running {
				t.Fatalf("container %.12s did not survive the daemon's shutdown", c)
			}
		}

		d.Restart(t)
		s := d.mustStatus(t, run)
		if s.Status != "running" || s.ContainerID != runBefore.ContainerID {
			t.Fatalf("running service after restart: %v, want adopted %.12s", s, runBefore.ContainerID)
		}
		s = d.settled(t, loading)
		if s.Status != "running" || s.ContainerID != loadBefore.ContainerID {
			t.Fatalf("start in flight at SIGTERM: %v, want resumed to running in %.12s", s, loadBefore.ContainerID)
		}
		for _, id := range []string{run, loading} {
			fltAssertOneContainer(t, d.mustStatus(t, id))
			d.MustCLI(t, "service", "stop", id)
		}
		d.assertNoOrphans(t, run, loading)
	})
}

// fltPhaseAtKill is the last start phase the (persisted) history shows before
// the daemon restart ended or resumed the start.
func fltPhaseAtKill(evs []fltEvent) string {
	phase := "none"
	for _, ev := range evs {
		if strings.Contains(ev.Message, "daemon restarted") || (ev.Type == "status" && (ev.Status == "failed" || ev.Status == "running")) {
			break
		}
		if ev.Type == "phase" {
			phase = ev.Phase
		}
	}
	return phase
}

func fltLastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
