package faults

import (
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
)

// Case 5: the Docker API connection cut (testenv.SockProxy between the
// daemon and the engine's socket) during a start and while services run.
// While cut: calls that need Docker fail fast with `unavailable` (exit code
// 5), and status shows the last known status marked stale. After the link
// is restored: no stale marks, and every status is what Docker really runs:
// the service that kept running is running, the start whose engine finished
// loading during the cut is running, the service whose container was killed
// during the cut is failed.
func TestFaultDockerCut(t *testing.T) {
	fltRequire(t)
	proxy := testenv.StartSockProxy(t, testenv.DockerSocket(t))
	e := fltSetup(t, "DOCKER_HOST="+proxy.Host())
	d := e.d
	fltEach(t, func(t *testing.T, rep int) {
		steady := e.create(t, nil)
		victim := e.create(t, nil)
		loading := e.create(t, fltSlowStart("4s"))
		steadyBefore := e.startWait(t, steady)
		victimBefore := e.startWait(t, victim)
		d.MustCLI(t, "service", "start", loading)
		loadBefore := d.waitLoading(t, loading)

		proxy.Cut()
		cutAt := time.Now()
		restored := false
		defer func() {
			if !restored {
				proxy.Restore()
			}
		}()
		s := d.waitFor(t, steady, 10*time.Second, "marked stale", func(s fltSvc) bool { return s.Stale })
		t.Logf("status marked stale %s after the cut", time.Since(cutAt).Round(time.Millisecond))
		if s.Status != "running" {
			t.Errorf("while cut: %v, want the last known status running", s)
		}

		// Calls that need Docker fail fast with unavailable.
		for _, args := range [][]string{
			{"service", "logs", steady},
			{"service", "logs", victim, "--tail", "5"},
		} {
			t0 := time.Now()
			r := d.CLI(t, args...)
			took := time.Since(t0)
			t.Logf("aima %s while cut: exit %d in %s: %s", strings.Join(args, " "), r.Code, took.Round(time.Millisecond), strings.TrimSpace(r.Stderr))
			if r.Code != 5 || !strings.Contains(r.Stderr, "unavailable") {
				t.Errorf("aima %s while cut: exit %d, stderr %q; want exit 5 (unavailable) with a clear message", strings.Join(args, " "), r.Code, r.Stderr)
			}
			if took > 10*time.Second {
				t.Errorf("aima %s while cut took %s: not failing fast", strings.Join(args, " "), took)
			}
		}
		// A start needs Docker too.
		late := e.create(t, nil)
		t0 := time.Now()
		r := d.CLI(t, "service", "start", late, "--wait", "--timeout", "30")
		t.Logf("aima service start --wait while cut: exit %d in %s: %s", r.Code, time.Since(t0).Round(time.Millisecond), fltLastLine(r.Stderr))
		if r.Code != 5 || !strings.Contains(r.Stderr, "unavailable") {
			t.Errorf("service start --wait while cut: exit %d, stderr %q; want exit 5 (unavailable)", r.Code, r.Stderr)
		}
		if s := d.mustStatus(t, late); s.Status != "failed" || s.Failure != "runtime_unavailable" || !strings.Contains(s.Reason, "unavailable") {
			t.Errorf("start while cut left %v, want failed with the unavailable reason", s)
		}

		// Status answers from the record, marked stale.
		st := d.mustStatus(t, steady)
		if st.Status != "running" || !st.Stale {
			t.Errorf("service status while cut: %v, want running and stale", st)
		}
		list := testenv.DecodeJSON[testenv.List[fltSvc]](t, d.MustCLI(t, "service", "list", "-o", "json").Stdout)
		for _, x := range list.Items {
			if !x.Stale {
				t.Errorf("service list while cut: %v not marked stale", x)
			}
		}
		doc := testenv.DecodeJSON[struct{ Docker string }](t, d.MustCLI(t, "doctor", "-o", "json").Stdout)
		if doc.Docker == "ok" || !strings.Contains(doc.Docker, "unavailable") {
			t.Errorf("doctor while cut says docker %q", doc.Docker)
		}

		// Things happen in Docker while aima cannot see: a container is
		// killed, and the loading engine becomes ready.
		fltKill(t, victimBefore.ContainerID)
		fltWaitEngineReady(t, loadBefore.ContainerID, 30*time.Second)
		// aima cannot see the exit yet: the probe may call it unhealthy, but
		// nothing may claim to know how it ended (wedged, exit code).
		if s := d.mustStatus(t, victim); (s.Status != "running" && s.Status != "unhealthy") || !s.Stale {
			t.Errorf("killed while cut: %v, want last known running (or unhealthy), stale", s)
		}

		proxy.Restore()
		restored = true
		restoreAt := time.Now()
		d.waitFor(t, steady, 15*time.Second, "no longer stale", func(s fltSvc) bool { return !s.Stale })
		t.Logf("stale mark gone %s after the restore", time.Since(restoreAt).Round(time.Millisecond))

		s = d.mustStatus(t, steady)
		if s.Status != "running" || s.ContainerID != steadyBefore.ContainerID {
			t.Errorf("after restore: %v, want still running in %.12s", s, steadyBefore.ContainerID)
		}
		fltAssertOneContainer(t, s)
		s = d.waitFor(t, victim, 15*time.Second, "failed", func(s fltSvc) bool { return s.Status != "running" })
		if s.Status != "failed" || s.ExitCode == nil || *s.ExitCode != 137 {
			t.Errorf("container killed during the cut: %v, want failed with exit code 137", s)
		}
		fltAssertOneContainer(t, s)
		s = d.settled(t, loading)
		if s.Status != "running" || s.ContainerID != loadBefore.ContainerID {
			t.Errorf("start in progress during the cut whose engine became ready: %v, want running in %.12s", s, loadBefore.ContainerID)
		}
		fltAssertOneContainer(t, s)
		if r := d.CLI(t, "service", "logs", steady, "--tail", "3"); r.Code != 0 {
			t.Errorf("service logs after restore: exit %d: %s", r.Code, r.Stderr)
		}
		// The start that failed for want of Docker works now.
		fltAssertOneContainer(t, e.startWait(t, late))
		for _, id := range []string{steady, loading, late} {
			d.MustCLI(t, "service", "stop", id)
		}
		d.assertNoOrphans(t, steady, victim, loading, late)
	})
}
