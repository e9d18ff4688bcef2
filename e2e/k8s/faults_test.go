package k8s

import (
	"strings"
	"testing"
	"time"
)

// TestKubeOOMKilled: an engine that allocates more host memory than its
// container's limit (the engines' memory_limit_mib, the Pod's
// limits.memory) is OOM-killed by the kernel on the real node; the start
// fails as oom with the kubelet's OOMKilled and exit code 137.
func TestKubeOOMKilled(t *testing.T) {
	e := setup(t, "pod_ip")
	id := e.create(t, map[string]string{"SIM_HOST_MEM": "256MiB"})
	r := e.d.CLI(t, "service", "start", id, "--wait", "--timeout", "120")
	if r.Code == 0 {
		t.Fatalf("start of an engine over its memory limit exited 0:\n%s", r.Stderr)
	}
	s := e.status(t, id)
	if s.Status != "failed" || s.Failure != "oom" || !s.OOMKilled || s.ExitCode == nil || *s.ExitCode != 137 {
		t.Fatalf("after the OOM kill: %+v\nstart:\n%s", s, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "OOM killed") {
		t.Errorf("the failed start does not say it was OOM killed:\n%s", r.Stderr)
	}
	p := e.pod(t, s.ContainerID)
	if lim := p.Spec.Containers[0].Resources.Limits.Memory().Value(); lim != memLimitMiB<<20 {
		t.Errorf("pod memory limit %d, want %d", lim, memLimitMiB<<20)
	}
	if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.Reason != "OOMKilled" {
		t.Errorf("pod container status %+v, want terminated OOMKilled", cs)
	}
}

// TestKubeLogsPrevious: an engine that crashes after it is ready keeps
// its Pod, so its log is read from pods/log after the end, and once the
// next start replaced it, `service logs --previous` prints its lines.
func TestKubeLogsPrevious(t *testing.T) {
	e := setup(t, "pod_ip")
	id := e.create(t, map[string]string{"SIM_FAIL": "crash-after", "SIM_FAIL_AFTER": "20s"})
	e.d.MustCLI(t, "service", "start", id, "--wait", "--timeout", "120")
	deadline := time.Now().Add(2 * time.Minute)
	for e.status(t, id).Status != "failed" {
		if time.Now().After(deadline) {
			t.Fatalf("the engine did not crash: %+v", e.status(t, id))
		}
		time.Sleep(200 * time.Millisecond)
	}
	first := e.status(t, id)
	if l := e.d.MustCLI(t, "service", "logs", id); !strings.Contains(l.Stdout, "EngineDeadError") {
		t.Errorf("logs of the crashed run (its Pod ended):\n%s", l.Stdout)
	}
	if r := e.d.CLI(t, "service", "logs", id, "--previous"); r.Code == 0 {
		t.Errorf("logs --previous before a second run: %s", r.Stdout)
	}

	e.d.MustCLI(t, "service", "start", id, "--wait", "--timeout", "120")
	second := e.status(t, id)
	if second.Run != first.Run+1 || second.ContainerID == first.ContainerID {
		t.Fatalf("second run %+v after %+v", second, first)
	}
	prev := e.d.MustCLI(t, "service", "logs", id, "--previous")
	if !strings.Contains(prev.Stdout, "EngineDeadError") || !strings.Contains(prev.Stdout, "Application startup complete.") {
		t.Errorf("logs --previous: want the first run's lines, through its crash:\n%s", prev.Stdout)
	}
	cur := e.d.MustCLI(t, "service", "logs", id)
	if !strings.Contains(cur.Stdout, "Application startup complete.") {
		t.Errorf("logs of the second run:\n%s", cur.Stdout)
	}
}
