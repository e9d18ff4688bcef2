package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestAPIKey(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := startSim(t, map[string]string{"VLLM_API_KEY": "sk-test", "SIM_TIME_SCALE": "0"},
		modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	if !r.out.waitFor("Application startup complete.", 3*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	if resp, body := get(t, base+"/v1/models"); resp.StatusCode != 401 || body != `{"error":"Unauthorized"}` {
		t.Errorf("no key: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", base+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("with key: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, _ := get(t, base+"/health"); resp.StatusCode != 200 {
		t.Errorf("/health must not need the key: %d", resp.StatusCode)
	}
}

// TestFailureModes checks each start-up failure's exit code, the reason line
// aima extracts, and that the server never became ready.
func TestFailureModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode, reason, rootCause string
		code                    int
	}{
		{"model-missing", "ValueError: Invalid repository ID or local directory specified: '%s'.", "", 1},
		{"oom-load", "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
			"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB.", 1},
		{"kv-none", "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
			"ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.", 1},
		{"no-gpu", "RuntimeError: Failed to infer device type", "", 1},
		{"port-in-use", "OSError: [Errno 98] Address already in use", "", 1},
		{"exit", "", "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			dir := modelDir(t)
			r := startSim(t, nil, dir, "--host", "127.0.0.1", "--port", fmt.Sprint(freePort(t)), "--sim-time-scale", fast, "--sim-fail", tc.mode)
			if code := r.wait(t, 3*time.Second); code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			all := r.out.String() + r.err.String()
			want := tc.reason
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, dir)
			}
			if got := lastErrorLine(r.err.String()); !strings.HasPrefix(got, want) || (want == "" && got != "") {
				t.Errorf("reason line %q, want prefix %q\nstderr:\n%s", got, want, r.err)
			}
			if tc.rootCause != "" && !strings.Contains(r.out.String(), "[core.py:708] "+tc.rootCause) {
				t.Errorf("engine ERROR block lacks root cause %q:\n%s", tc.rootCause, r.out)
			}
			if strings.Contains(all, "Application startup complete.") {
				t.Error("failed start-up reported ready")
			}
		})
	}
}

func TestModelCheck(t *testing.T) {
	t.Parallel()
	noConfig := t.TempDir()
	gguf := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(gguf, []byte("GGUF"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	snap := filepath.Join(cache, "models--org--cached", "snapshots", "abc123")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snap, "config.json"), []byte(`{"architectures":["MistralForCausalLM"],"max_position_embeddings":4096}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		ready bool
		arch  string
	}{
		{"missing dir", nil, []string{"/nonexistent/model"}, false, ""},
		{"dir without config.json", nil, []string{noConfig}, false, ""},
		{"relative missing", nil, []string{"./nope"}, false, ""},
		{"uncached repo id", map[string]string{"HF_HUB_CACHE": cache}, []string{"org/missing"}, false, ""},
		{"bare id", nil, []string{"nonexistent-model-id"}, false, ""},
		{"gguf file", nil, []string{gguf}, true, "LlamaForCausalLM"},
		{"cached repo id", map[string]string{"HF_HUB_CACHE": cache}, []string{"org/cached"}, true, "MistralForCausalLM"},
		{"check off", map[string]string{"SIM_MODEL_CHECK": "off"}, []string{"/nonexistent/model"}, true, "LlamaForCausalLM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"SIM_TIME_SCALE": fast, "HOME": t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			args := append(tc.args, "--host", "127.0.0.1", "--port", fmt.Sprint(freePort(t)))
			r := startSim(t, env, args...)
			if !tc.ready {
				if code := r.wait(t, 2*time.Second); code != 1 {
					t.Errorf("exit %d, want 1", code)
				}
				want := fmt.Sprintf("ValueError: Invalid repository ID or local directory specified: '%s'.", tc.args[0])
				if got := lastErrorLine(r.err.String()); got != want {
					t.Errorf("reason %q, want %q", got, want)
				}
				return
			}
			if !r.out.waitFor("Application startup complete.", 3*time.Second) {
				t.Fatalf("not ready:\n%s\n%s", r.out, r.err)
			}
			if !strings.Contains(r.out.String(), "Resolved architecture: "+tc.arch) {
				t.Errorf("want architecture %s:\n%s", tc.arch, r.out)
			}
		})
	}
}

func TestModelMissingIsFastAndOverridable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r := startSim(t, map[string]string{"SIM_EXIT_CODE": "3"}, "--model", "nonexistent-model-id", "--sim-time-scale", fast)
	if code := r.wait(t, 2*time.Second); code != 3 {
		t.Errorf("exit %d, want --sim-exit-code 3", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("model-missing took %v", d)
	}
	if strings.Contains(r.out.String(), "Resolved architecture") {
		t.Error("config phase should fail before resolving the architecture")
	}
}

func TestCrashAfter(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// 5 s watchdog × 0.1 = 500 ms of 503 before the server stops.
	r := startSim(t, map[string]string{"SIM_FAIL": "crash-after", "SIM_FAIL_AFTER": "1s", "SIM_STARTUP": "1s", "SIM_TIME_SCALE": "0.1"},
		modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	if !r.out.waitFor("Application startup complete.", 3*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	if resp, _ := get(t, base+"/health"); resp.StatusCode != 200 {
		t.Fatalf("/health before crash = %d", resp.StatusCode)
	}
	if !r.out.waitFor("EngineDeadError", 2*time.Second) {
		t.Fatal("no EngineDeadError")
	}
	if resp, _ := get(t, base+"/health"); resp.StatusCode != 503 {
		t.Errorf("/health after crash = %d, want 503", resp.StatusCode)
	}
	if resp, body := post(t, base+"/v1/completions", `{"prompt":"x"}`); resp.StatusCode != 500 || !strings.Contains(body, engineDeadMsg) {
		t.Errorf("request on dead engine = %d %s", resp.StatusCode, body)
	}
	if code := r.wait(t, 2*time.Second); code != 0 {
		t.Errorf("exit %d, want 0 like vLLM", code)
	}
	out := r.out.String()
	if got := lastErrorLine(out); got != "vllm.v1.engine.exceptions.EngineDeadError: "+engineDeadMsg {
		t.Errorf("reason %q", got)
	}
	assertInOrder(t, out, []string{"EngineCore encountered a fatal error.", "EngineDeadError", "INFO:     Shutting down",
		"INFO:     Application shutdown complete.", "INFO:     Finished server process ["})
	if strings.Contains(out, "Shutting down FastAPI HTTP server.") {
		t.Error("watchdog shutdown is not a signal shutdown")
	}
}

func TestWedgeAfter(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := startSim(t, nil, modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port),
		"--sim-time-scale", fast, "--sim-fail", "wedge-after", "--sim-fail-after", "10s")
	if !r.out.waitFor("Application startup complete.", 3*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	if resp, _ := get(t, base+"/health"); resp.StatusCode != 200 {
		t.Fatalf("/health before wedge = %d", resp.StatusCode)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, _ := get(t, base+"/health")
		if resp.StatusCode == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/health never turned 503")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if r.exited() {
		t.Fatal("wedged process exited")
	}
	if resp, _ := get(t, base+"/health"); resp.StatusCode != 503 {
		t.Errorf("/health recovered: %d", resp.StatusCode)
	}
	r.cancel()
	if code := r.wait(t, time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

func TestHangAndSignalDuringStartup(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	r := startSim(t, map[string]string{"SIM_FAIL": "hang", "SIM_TIME_SCALE": fast}, modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	if !r.err.waitFor("0% Completed", 2*time.Second) {
		t.Fatal("load phase never started")
	}
	time.Sleep(400 * time.Millisecond) // twice the whole start-up
	if r.exited() {
		t.Fatalf("hang exited with %d", r.code)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Fatal("hung engine listens")
	}
	if strings.Contains(r.out.String(), "Loading weights took") {
		t.Error("hang kept logging")
	}
	stop := time.Now()
	r.cancel()
	if code := r.wait(t, time.Second); code != 0 {
		t.Errorf("exit %d, want 0 (documented choice for a stop during start-up)", code)
	}
	if d := time.Since(stop); d > 500*time.Millisecond {
		t.Errorf("exit took %v after signal", d)
	}
}

func TestEnforceEagerSkipsCompile(t *testing.T) {
	t.Parallel()
	r := startSim(t, nil, modelDir(t), "--host", "127.0.0.1", "--port", "0", "--sim-time-scale", fast, "--enforce-eager", "--disable-log-stats")
	if !r.out.waitFor("Application startup complete.", 3*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	out := r.out.String()
	if strings.Contains(out, "torch.compile") || strings.Contains(r.err.String(), "Capturing CUDA graphs") {
		t.Errorf("--enforce-eager still compiles:\n%s", out)
	}
	// --port 0: the ready line names the ephemeral port, which answers.
	m := regexp.MustCompile(`Starting vLLM API server 0 on (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ready line:\n%s", out)
	}
	if resp, _ := get(t, m[1]+"/health"); resp.StatusCode != 200 {
		t.Errorf("/health on ephemeral port = %d", resp.StatusCode)
	}
}

func TestProbeAndVersion(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	r := startSim(t, map[string]string{"SIM_TIME_SCALE": "0"}, modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	if !r.out.waitFor("Application startup complete.", 3*time.Second) {
		t.Fatal("never ready")
	}
	out := newSink()
	if code := run(t.Context(), []string{"probe", "--url", fmt.Sprintf("http://127.0.0.1:%d/health", port)}, envMap(nil), out, out); code != 0 {
		t.Errorf("probe on ready server = %d: %s", code, out)
	}
	if code := run(t.Context(), []string{"probe", "--url", fmt.Sprintf("http://127.0.0.1:%d/health", freePort(t)), "--timeout", "200ms"}, envMap(nil), out, out); code != 1 {
		t.Errorf("probe on closed port = %d", code)
	}
	out = newSink()
	if code := run(t.Context(), []string{"version"}, envMap(nil), out, out); code != 0 || out.String() != "0.11.0\n" {
		t.Errorf("version = %d %q", code, out)
	}
	if code := run(t.Context(), []string{"--version"}, envMap(nil), out, out); code != 0 {
		t.Errorf("--version = %d", code)
	}
}
