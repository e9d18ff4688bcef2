// Package e2e holds aima's end-to-end tests: the built aima binary and an
// in-process daemon driving a real Docker engine with the engine simulator.
// They fail (not skip) when Docker is missing; `go test -short` skips them.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
)

// simScale makes the simulator's 20 s start-up take about a second.
const simScale = "0.05"

// writeConfig writes a config that points vllm at the simulator image.
func writeConfig(t *testing.T, image string, env map[string]string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "engines:\n  vllm:\n    image: %s\n    gpus: none\n    env:\n", image)
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["SIM_TIME_SCALE"]; !ok {
		env["SIM_TIME_SCALE"] = simScale
	}
	for k, v := range env {
		fmt.Fprintf(&b, "      %s: %q\n", k, v)
	}
	lo := testenv.FreePort(t)
	fmt.Fprintf(&b, "port_range: %d-%d\n", lo, lo+20)
	path := filepath.Join(t.TempDir(), "aima.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// makeModel creates a Hugging Face-style model directory.
func makeModel(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"architectures":["Qwen2ForCausalLM"],"torch_dtype":"bfloat16","max_position_embeddings":32768}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), bytes.Repeat([]byte{1}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// daemonProc is an `aima start` subprocess.
type daemonProc struct {
	bin, addr, dataDir, config string
	cmd                        *exec.Cmd
	log                        *bytes.Buffer
}

// startDaemon runs the built binary as a daemon and waits for /health.
func startDaemon(t *testing.T, bin, config, dataDir string) *daemonProc {
	t.Helper()
	d := &daemonProc{bin: bin, addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), dataDir: dataDir, config: config, log: &bytes.Buffer{}}
	d.start(t)
	return d
}

func (d *daemonProc) start(t *testing.T) {
	t.Helper()
	d.cmd = exec.Command(d.bin, "start", "--addr", d.addr, "--data-dir", d.dataDir, "--config", d.config)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := d.cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get("http://" + d.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("daemon did not answer /health: %v\n%s", err, d.log.String())
		case <-tick.C:
		}
	}
}

// result of one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// aima runs the CLI against the daemon.
func (d *daemonProc) aima(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = append(os.Environ(), "AIMA_ADDR="+d.addr)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("aima %v: %v", args, err)
	}
	return r
}

// must runs the CLI and fails the test on a non-zero exit.
func (d *daemonProc) must(t *testing.T, args ...string) result {
	t.Helper()
	r := d.aima(t, args...)
	if r.code != 0 {
		t.Fatalf("aima %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// getJSON fetches an HTTP API route and decodes it.
func (d *daemonProc) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// dockerPS lists containers of the given service label as "name status".
func dockerPS(t *testing.T, filter string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-a", "--filter", filter, "--format", "{{.Names}} {{.State}}").CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps: %v: %s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
