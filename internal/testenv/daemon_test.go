package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/config"
	"aima/internal/testenv/testports"
)

func TestSimConfig(t *testing.T) {
	t.Parallel()
	path := SimConfig(t, SimConfigOptions{Image: EngineSimRef, Env: map[string]string{"SIM_FAIL": "hang"}})
	c, err := config.Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	v := c.Engines["vllm"]
	if v.Image != EngineSimRef || v.Env["SIM_TIME_SCALE"] != SimTimeScale || v.Env["SIM_FAIL"] != "hang" {
		t.Errorf("vllm: %+v", v)
	}
	if lo, hi := c.PortRange.Low, c.PortRange.High; hi-lo != 20 {
		t.Errorf("ports %d-%d", lo, hi)
	}

	path = SimConfig(t, SimConfigOptions{Image: EngineSimRef, Env: map[string]string{"SIM_TIME_SCALE": "1"}, PortSpan: 2000, Extra: "unhealthy_grace: 2s\n"})
	if c, err = config.Load(path, true); err != nil {
		t.Fatal(err)
	}
	if s := c.Engines["vllm"].Env["SIM_TIME_SCALE"]; s != "1" {
		t.Errorf("SIM_TIME_SCALE %q, want the caller's 1", s)
	}
	if lo, hi := c.PortRange.Low, c.PortRange.High; hi-lo != 2000 || lo < 10000 || hi >= testports.EphemeralLow() {
		t.Errorf("wide ports %d-%d", lo, hi)
	}
	if time.Duration(c.UnhealthyGrace) != 2*time.Second {
		t.Errorf("extra line lost: unhealthy_grace %v", time.Duration(c.UnhealthyGrace))
	}

	raw, err := os.ReadFile(SimConfig(t, SimConfigOptions{Image: EngineSimRef, NoEngineEnv: true}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "env:") {
		t.Errorf("NoEngineEnv config has an env:\n%s", raw)
	}
}

func TestMakeModel(t *testing.T) {
	t.Parallel()
	dir := MakeModel(t, "qwen-x")
	if filepath.Base(dir) != "qwen-x" {
		t.Errorf("dir %s", dir)
	}
	var cfg struct{ Architectures []string }
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil || json.Unmarshal(raw, &cfg) != nil || len(cfg.Architectures) != 1 {
		t.Errorf("config.json %s: %v", raw, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil || st.Size() != 4096 {
		t.Errorf("model.safetensors: %v", err)
	}
}

// TestStartDaemon runs the daemon through its lives: start, the CLI and
// HTTP against it, SIGKILL, a restart on the same data dir, SIGTERM.
func TestStartDaemon(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the aima binary")
	}
	d := StartDaemon(t, DaemonOptions{Config: SimConfig(t, SimConfigOptions{Image: EngineSimRef})})
	if code, _, err := d.Get("/health"); err != nil || code != 200 {
		t.Fatalf("GET /health: %d %v", code, err)
	}
	model := MakeModel(t, "qwen-proc")
	if r := d.MustCLI(t, "model", "add", "--path", model, "-o", "json"); !strings.Contains(r.Stdout, `"id"`) {
		t.Fatalf("model add: %+v", r)
	}
	if r := d.CLI(t, "service", "status", "svc-nope"); r.Code == 0 || r.Stderr == "" {
		t.Errorf("status of an unknown service: %+v", r)
	}
	if r := d.RunCLI("no-such-command"); r.Code == 0 {
		t.Errorf("an unknown command exited 0: %+v", r)
	}
	if code, _, err := d.Post("/api/service/status", map[string]string{"service_id": "svc-nope"}); err != nil || code != 404 {
		t.Errorf("POST status of an unknown service: %d %v", code, err)
	}

	d.Kill(t)
	if d.Alive() {
		t.Fatal("alive after Kill")
	}
	d.Restart(t)
	var list struct{ Total int }
	if err := json.Unmarshal([]byte(d.MustCLI(t, "model", "list", "-o", "json").Stdout), &list); err != nil || list.Total != 1 {
		t.Errorf("after a restart on the same data dir: %d models (%v), want 1", list.Total, err)
	}
	if code, _ := d.Term(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	if !strings.Contains(d.Logs(), "daemon life 2") || !strings.Contains(d.Logs(), "SIGKILL at") {
		t.Errorf("log lacks the life markers:\n%s", d.Logs())
	}
}
