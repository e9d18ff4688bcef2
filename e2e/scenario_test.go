package e2e

import (
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

// TestUserScenario is the operator's acceptance scenario of the lifecycle
// core, through the built binary and the HTTP API.
func TestUserScenario(t *testing.T) {
	testenv.RequireDocker(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{})})
	t.Cleanup(func() { d.CLI(t, "service", "list") })

	modelDir := testenv.MakeModel(t, "qwen-tiny")
	d.MustCLI(t, "model", "add", "--path", modelDir)
	models := testenv.DecodeJSON[testenv.List[struct{ ID, Path string }]](t, d.MustCLI(t, "model", "list", "--output", "json").Stdout)
	if models.Total != 1 || models.Items[0].ID == "" {
		t.Fatalf("model list: %+v", models)
	}
	modelID := models.Items[0].ID

	d.MustCLI(t, "service", "create", "--model-id", modelID, "--engine-type", "vllm")
	svcs := testenv.DecodeJSON[testenv.List[svcJSON]](t, d.MustCLI(t, "service", "list", "--output", "json").Stdout)
	svc := svcs.Items[len(svcs.Items)-1]
	testenv.RemoveContainersWithLabel(t, "aima.service", svc.ID)
	if svc.Status != "created" {
		t.Fatalf("new service status %q", svc.Status)
	}

	start := d.MustCLI(t, "service", "start", svc.ID, "--wait", "--timeout", "120")
	assertPhasesInOrder(t, start.Stderr, "cleanup", "pull", "create", "start", "loading", "health_check", "running")
	if !strings.Contains(start.Stderr, "weights loaded") {
		t.Errorf("no loading milestone from the engine's log in:\n%s", start.Stderr)
	}

	logs := d.MustCLI(t, "service", "logs", svc.ID)
	for _, want := range []string{"Resolved architecture", "Application startup complete."} {
		if !strings.Contains(logs.Stdout, want) {
			t.Errorf("service logs lack %q:\n%s", want, logs.Stdout)
		}
	}
	var httpLogs struct {
		Lines []struct{ Stream, Text string } `json:"lines"`
	}
	if code := d.GetJSON(t, "/api/service/logs?service_id="+svc.ID, &httpLogs); code != 200 {
		t.Fatalf("HTTP logs: %d", code)
	}
	var texts []string
	for _, l := range httpLogs.Lines {
		texts = append(texts, l.Text)
	}
	if got, want := strings.Join(texts, "\n"), strings.TrimRight(logs.Stdout, "\n"); got != want {
		t.Errorf("HTTP logs differ from CLI logs:\nHTTP:\n%s\nCLI:\n%s", got, want)
	}
	var st svcJSON
	d.GetJSON(t, "/api/service/status?service_id="+svc.ID, &st)
	cli := testenv.DecodeJSON[svcJSON](t, d.MustCLI(t, "service", "status", svc.ID, "-o", "json").Stdout)
	if st.Status != "running" || cli.Status != "running" {
		t.Fatalf("status: HTTP %q, CLI %q, want running", st.Status, cli.Status)
	}

	// A start that fails ends in failed with the engine's reason.
	created := d.MustCLI(t, "service", "create", "--model-id", "nonexistent-model-id", "--engine-type", "vllm")
	if !strings.Contains(created.Stderr, "remote model reference") {
		t.Errorf("no warning for a remote model reference; stderr: %s", created.Stderr)
	}
	svcs = testenv.DecodeJSON[testenv.List[svcJSON]](t, d.MustCLI(t, "service", "list", "--output", "json").Stdout)
	failSvc := svcs.Items[len(svcs.Items)-1].ID
	testenv.RemoveContainersWithLabel(t, "aima.service", failSvc)
	bad := d.CLI(t, "service", "start", failSvc, "--wait", "--timeout", "60")
	if bad.Code == 0 {
		t.Fatalf("failing start exited 0:\n%s", bad.Stderr)
	}
	if !strings.Contains(bad.Stderr, "Invalid repository ID or local directory specified") || !strings.Contains(bad.Stderr, "exited with code 1") {
		t.Errorf("failing start does not print the engine's reason and exit code:\n%s", bad.Stderr)
	}
	svcs = testenv.DecodeJSON[testenv.List[svcJSON]](t, d.MustCLI(t, "service", "list", "--output", "json").Stdout)
	for _, s := range svcs.Items {
		if s.ID == failSvc && s.Status != "failed" {
			t.Errorf("failed service listed as %q", s.Status)
		}
	}
	// Logs of a failed start stay readable.
	if l := d.MustCLI(t, "service", "logs", failSvc); !strings.Contains(l.Stdout, "Invalid repository ID") {
		t.Errorf("logs of the failed start:\n%s", l.Stdout)
	}

	// Docker agrees with aima.
	assertDockerAgrees(t, d, svcs.Items)

	d.MustCLI(t, "service", "stop", svc.ID)
	cli = testenv.DecodeJSON[svcJSON](t, d.MustCLI(t, "service", "status", svc.ID, "-o", "json").Stdout)
	if cli.Status != "stopped" {
		t.Fatalf("after stop: %q", cli.Status)
	}
	svcs = testenv.DecodeJSON[testenv.List[svcJSON]](t, d.MustCLI(t, "service", "list", "--output", "json").Stdout)
	assertDockerAgrees(t, d, svcs.Items)
}

// assertDockerAgrees checks that exactly the services aima calls running
// have a running container, and each service has at most one container.
func assertDockerAgrees(t *testing.T, d *testenv.DaemonProc, svcs []svcJSON) {
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
