package k8s

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKubeScenario is the operator's acceptance scenario on Kubernetes,
// through the built binary and the HTTP API, with the engine a real Pod on
// the real node: create → start --wait (schedule, pull, create, start, the
// engine's loading milestones, health_check) → logs → status over HTTP =
// CLI → the endpoint answers → a failed start ends failed with the engine's
// line → stop ends the engine and keeps its Pod → logs of the stopped run,
// and --previous after the next start.
func TestKubeScenario(t *testing.T) {
	e := setup(t, "pod_ip")
	id := e.create(t, nil)

	start := e.d.MustCLI(t, "service", "start", id, "--wait", "--timeout", "180")
	if seen := phases(start.Stderr); !inOrder(seen, "cleanup", "pull", "create", "start", "loading", "health_check", "running") {
		t.Errorf("phases %v: want cleanup, pull, create, start, loading, health_check, running in order", seen)
	}
	// The scheduler's step: aima's words ("assigned to node X") when the
	// Pod's binding arrives first, the scheduler's event ("Successfully
	// assigned ns/pod to X") when its event does.
	if !slices.ContainsFunc(strings.Split(start.Stderr, "\n"), func(l string) bool {
		return strings.Contains(l, "scheduled: ") && strings.Contains(l, "assigned") &&
			(strings.Contains(l, " to node "+e.node.Name) || strings.Contains(l, " to "+e.node.Name))
	}) {
		t.Errorf("start progress lacks the scheduled step naming node %s:\n%s", e.node.Name, start.Stderr)
	}
	for _, want := range []string{
		// The kubelet's pull step. (Its Started event may arrive after the
		// Pod's status says the container runs, which ends the start
		// step's wait: the phases above show the start either way.)
		"already present on machine",
		"weights loaded", // the engine's own milestones
	} {
		if !strings.Contains(start.Stderr, want) {
			t.Errorf("start progress lacks %q", want)
		}
	}

	st := e.status(t, id)
	p := e.pod(t, st.ContainerID)
	if p.Spec.NodeName != e.node.Name || !strings.HasPrefix(p.Status.PodIP, "10.88.") {
		t.Fatalf("pod %s on node %q at %q: want the real node %s, a bridge IP", p.Name, p.Spec.NodeName, p.Status.PodIP, e.node.Name)
	}

	logs := e.d.MustCLI(t, "service", "logs", id)
	for _, want := range []string{"Resolved architecture", "Application startup complete."} {
		if !strings.Contains(logs.Stdout, want) {
			t.Errorf("service logs lack %q:\n%s", want, logs.Stdout)
		}
	}
	var httpLogs struct {
		Lines []struct{ Stream, Text string } `json:"lines"`
	}
	if code := e.d.GetJSON(t, "/api/service/logs?service_id="+id, &httpLogs); code != 200 {
		t.Fatalf("HTTP logs: %d", code)
	}
	var texts []string
	for _, l := range httpLogs.Lines {
		texts = append(texts, l.Text)
	}
	if got, want := strings.Join(texts, "\n"), strings.TrimRight(logs.Stdout, "\n"); got != want {
		t.Errorf("HTTP logs differ from CLI logs:\nHTTP:\n%s\nCLI:\n%s", got, want)
	}
	var hs svcJSON
	e.d.GetJSON(t, "/api/service/status?service_id="+id, &hs)
	if hs.Status != "running" || st.Status != "running" || hs.ContainerID != st.ContainerID {
		t.Fatalf("status: HTTP %+v, CLI %+v, want both running with one Pod", hs, st)
	}

	// The service's endpoint on the daemon's host reaches the Pod.
	resp, err := http.Get(st.Endpoint + "/v1/models")
	if err != nil {
		t.Fatalf("the service's endpoint %s: %v", st.Endpoint, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"object":"list"`) {
		t.Errorf("GET %s/v1/models: %d %s", st.Endpoint, resp.StatusCode, body)
	}

	// A start that fails ends failed with the engine's line and exit code.
	failID := e.create(t, map[string]string{"SIM_FAIL": "model-missing"})
	bad := e.d.CLI(t, "service", "start", failID, "--wait", "--timeout", "120")
	if bad.Code == 0 {
		t.Fatalf("failing start exited 0:\n%s", bad.Stderr)
	}
	if !strings.Contains(bad.Stderr, "exited with code 1") || !strings.Contains(bad.Stderr, "ValueError: Invalid repository ID or local directory specified") {
		t.Errorf("failing start does not print the engine's line and exit code:\n%s", bad.Stderr)
	}
	if f := e.status(t, failID); f.Status != "failed" || f.Failure != "exited" || f.ExitCode == nil || *f.ExitCode != 1 {
		t.Errorf("failed start: %+v, want failed, exited, exit code 1", f)
	}
	// Its Pod is kept, so its log stays readable.
	if l := e.d.MustCLI(t, "service", "logs", failID); !strings.Contains(l.Stdout, "Invalid repository ID") {
		t.Errorf("logs of the failed start:\n%s", l.Stdout)
	}
	// The kubelet hands the engine's last lines over with the end
	// (aima's Pods ask for FallbackToLogsOnError), so the end of a running
	// engine is explained from the watch event, without a pods/log read.
	if pod, err := e.c.Client.CoreV1().Pods(e.ns).Get(t.Context(), e.status(t, failID).ContainerID, metav1.GetOptions{}); err != nil {
		t.Errorf("the failed start's pod: %v", err)
	} else if cs := pod.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil ||
		!strings.Contains(cs[0].State.Terminated.Message, "ValueError: Invalid repository ID") {
		t.Errorf("the kubelet's terminated state does not carry the engine's last lines: %+v", cs)
	}

	e.d.MustCLI(t, "service", "stop", id)
	if st := e.status(t, id); st.Status != "stopped" {
		t.Fatalf("after stop: %q", st.Status)
	}
	// Stop ends the engine and keeps its Pod, as Docker keeps a stopped
	// container: the kubelet ended it past the deadline aima set, and its
	// log stays readable.
	if p, err := e.c.Client.CoreV1().Pods(e.ns).Get(t.Context(), st.ContainerID, metav1.GetOptions{}); err != nil {
		t.Errorf("the stopped run's pod: %v, want it kept", err)
	} else if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "DeadlineExceeded" {
		t.Errorf("the stopped run's pod: phase %s, reason %q; want Failed, DeadlineExceeded", p.Status.Phase, p.Status.Reason)
	}
	if l := e.d.MustCLI(t, "service", "logs", id); !strings.Contains(l.Stdout, "Shutting down") {
		t.Errorf("logs of the stopped run, through its shutdown:\n%s", l.Stdout)
	}
	// After the next start, --previous is the stopped run, as on Docker.
	e.d.MustCLI(t, "service", "start", id, "--wait", "--timeout", "120")
	if again := e.status(t, id); again.Run != st.Run+1 || again.ContainerID == st.ContainerID {
		t.Fatalf("the next run %+v after %+v", again, st)
	}
	prev := e.d.MustCLI(t, "service", "logs", id, "--previous")
	if !strings.Contains(prev.Stdout, "Application startup complete.") || !strings.Contains(prev.Stdout, "Shutting down") {
		t.Errorf("logs --previous after a stop: want the stopped run's lines, through its shutdown:\n%s", prev.Stdout)
	}
	e.d.MustCLI(t, "service", "stop", id)
}
