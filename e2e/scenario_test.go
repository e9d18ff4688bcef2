package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"aima/internal/testenv"
)

type svcJSON struct {
	ID          string   `json:"id"`
	Status      string   `json:"status"`
	Phase       string   `json:"phase"`
	Reason      string   `json:"reason"`
	ExitCode    *int     `json:"exit_code"`
	ContainerID string   `json:"container_id"`
	Port        int      `json:"port"`
	Warnings    []string `json:"warnings"`
}

type listJSON[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}

// TestUserScenario is the operator's acceptance scenario of the lifecycle
// core, through the built binary and the HTTP API.
func TestUserScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	testenv.RequireDocker(t)
	image := testenv.EngineSimImage(t)
	bin := testenv.BuildAima(t)
	d := startDaemon(t, bin, writeConfig(t, image, nil), filepath.Join(t.TempDir(), "data"))
	t.Cleanup(func() { d.aima(t, "service", "list") })

	modelDir := makeModel(t, "qwen-tiny")
	d.must(t, "model", "add", "--path", modelDir)
	models := decode[listJSON[struct{ ID, Path string }]](t, d.must(t, "model", "list", "--output", "json").stdout)
	if models.Total != 1 || models.Items[0].ID == "" {
		t.Fatalf("model list: %+v", models)
	}
	modelID := models.Items[0].ID

	d.must(t, "service", "create", "--model-id", modelID, "--engine-type", "vllm")
	svcs := decode[listJSON[svcJSON]](t, d.must(t, "service", "list", "--output", "json").stdout)
	svc := svcs.Items[len(svcs.Items)-1]
	testenv.RemoveContainersWithLabel(t, "aima.service", svc.ID)
	if svc.Status != "created" {
		t.Fatalf("new service status %q", svc.Status)
	}

	start := d.must(t, "service", "start", svc.ID, "--wait", "--timeout", "120")
	assertPhasesInOrder(t, start.stderr, "cleanup", "pull", "create", "start", "loading", "health_check", "running")
	if !strings.Contains(start.stderr, "weights loaded") {
		t.Errorf("no loading milestone from the engine's log in:\n%s", start.stderr)
	}

	logs := d.must(t, "service", "logs", svc.ID)
	for _, want := range []string{"Resolved architecture", "Application startup complete."} {
		if !strings.Contains(logs.stdout, want) {
			t.Errorf("service logs lack %q:\n%s", want, logs.stdout)
		}
	}
	var httpLogs struct {
		Lines []struct{ Stream, Text string } `json:"lines"`
	}
	if code := d.getJSON(t, "/api/service/logs?service_id="+svc.ID, &httpLogs); code != 200 {
		t.Fatalf("HTTP logs: %d", code)
	}
	var texts []string
	for _, l := range httpLogs.Lines {
		texts = append(texts, l.Text)
	}
	if got, want := strings.Join(texts, "\n"), strings.TrimRight(logs.stdout, "\n"); got != want {
		t.Errorf("HTTP logs differ from CLI logs:\nHTTP:\n%s\nCLI:\n%s", got, want)
	}
	var st svcJSON
	d.getJSON(t, "/api/service/status?service_id="+svc.ID, &st)
	cli := decode[svcJSON](t, d.must(t, "service", "status", svc.ID, "-o", "json").stdout)
	if st.Status != "running" || cli.Status != "running" {
		t.Fatalf("status: HTTP %q, CLI %q, want running", st.Status, cli.Status)
	}

	// A start that fails ends in failed with the engine's reason.
	created := d.must(t, "service", "create", "--model-id", "nonexistent-model-id", "--engine-type", "vllm")
	if !strings.Contains(created.stderr, "remote model reference") {
		t.Errorf("no warning for a remote model reference; stderr: %s", created.stderr)
	}
	svcs = decode[listJSON[svcJSON]](t, d.must(t, "service", "list", "--output", "json").stdout)
	failSvc := svcs.Items[len(svcs.Items)-1].ID
	testenv.RemoveContainersWithLabel(t, "aima.service", failSvc)
	bad := d.aima(t, "service", "start", failSvc, "--wait", "--timeout", "60")
	if bad.code == 0 {
		t.Fatalf("failing start exited 0:\n%s", bad.stderr)
	}
	if !strings.Contains(bad.stderr, "Invalid repository ID or local directory specified") || !strings.Contains(bad.stderr, "exited with code 1") {
		t.Errorf("failing start does not print the engine's reason and exit code:\n%s", bad.stderr)
	}
	svcs = decode[listJSON[svcJSON]](t, d.must(t, "service", "list", "--output", "json").stdout)
	for _, s := range svcs.Items {
		if s.ID == failSvc && s.Status != "failed" {
			t.Errorf("failed service listed as %q", s.Status)
		}
	}
	// Logs of a failed start stay readable.
	if l := d.must(t, "service", "logs", failSvc); !strings.Contains(l.stdout, "Invalid repository ID") {
		t.Errorf("logs of the failed start:\n%s", l.stdout)
	}

	// Docker agrees with aima.
	assertDockerAgrees(t, d, svcs.Items)

	d.must(t, "service", "stop", svc.ID)
	cli = decode[svcJSON](t, d.must(t, "service", "status", svc.ID, "-o", "json").stdout)
	if cli.Status != "stopped" {
		t.Fatalf("after stop: %q", cli.Status)
	}
	svcs = decode[listJSON[svcJSON]](t, d.must(t, "service", "list", "--output", "json").stdout)
	assertDockerAgrees(t, d, svcs.Items)
}

// assertDockerAgrees checks that exactly the services aima calls running
// have a running container, and each service has at most one container.
func assertDockerAgrees(t *testing.T, d *daemonProc, svcs []svcJSON) {
	t.Helper()
	for _, s := range svcs {
		ps := dockerPS(t, "label=aima.service="+s.ID)
		if len(ps) > 1 {
			t.Errorf("service %s has %d containers: %v", s.ID, len(ps), ps)
		}
		running := len(ps) == 1 && strings.HasSuffix(ps[0], " running")
		if running != (s.Status == "running") {
			t.Errorf("service %s: aima says %s, docker says %v", s.ID, s.Status, ps)
		}
	}
}

// assertPhasesInOrder checks the `==> phase` lines of a start's progress.
func assertPhasesInOrder(t *testing.T, progress string, phases ...string) {
	t.Helper()
	var seen []string
	for _, line := range strings.Split(progress, "\n") {
		if f := strings.Fields(strings.TrimPrefix(line, "==> ")); strings.HasPrefix(line, "==> ") && len(f) > 0 {
			seen = append(seen, f[0])
		}
	}
	i := 0
	for _, p := range seen {
		if i < len(phases) && p == phases[i] {
			i++
		}
	}
	if i != len(phases) {
		t.Fatalf("phases seen %v, want %v in order; progress:\n%s", seen, phases, progress)
	}
}
