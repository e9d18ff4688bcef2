package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary, as Docker would: signals, exit codes and
// the stdout/stderr split are process-level behaviour.

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// simBinary builds the simulator once per test run, like `make enginesim`.
func simBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		if binDir, binErr = os.MkdirTemp("", "enginesim-test-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "enginesim")
		cmd := exec.Command(goTool, "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// startProcess starts the binary with a clean environment plus env.
func startProcess(t *testing.T, env []string, args ...string) (*exec.Cmd, *sink, *sink) {
	t.Helper()
	cmd := exec.Command(simBinary(t), args...)
	out, errw := newSink(), newSink()
	cmd.Stdout, cmd.Stderr = out, errw
	cmd.Env = append([]string{"HOME=" + t.TempDir()}, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out, errw
}

// exitCode waits for cmd and returns its exit code.
func exitCode(t *testing.T, cmd *exec.Cmd, timeout time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("process still running after %v", timeout)
		return -1
	}
}

func TestProcessSIGTERMWhileServing(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cmd, out, _ := startProcess(t, []string{"SIM_TIME_SCALE=" + fast},
		"serve", "--model", modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	if !out.waitFor("Application startup complete.", 5*time.Second) {
		t.Fatalf("never ready:\n%s", out)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %v %v", resp, err)
	}
	resp.Body.Close()
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, 2*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("SIGTERM took %v, want < 1s", d)
	}
	assertInOrder(t, out.String(), []string{"Shutting down FastAPI HTTP server.", "INFO:     Shutting down",
		"INFO:     Waiting for application shutdown.", "INFO:     Application shutdown complete.",
		fmt.Sprintf("INFO:     Finished server process [%d]", cmd.Process.Pid)})
}

func TestProcessSIGTERMDuringStartup(t *testing.T) {
	t.Parallel()
	cmd, out, _ := startProcess(t, nil, modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(freePort(t)))
	if !out.waitFor("Automatically detected platform cuda.", 5*time.Second) {
		t.Fatal("no first line")
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, 2*time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("exit took %v", d)
	}
}

func TestProcessExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"repeated serve", nil, []string{"serve", "serve", "--model", "/m"}, 2, "usage: vllm [-h]"},
		{"bad int", nil, []string{"--port", "x"}, 2, "vllm serve: error: argument --port: invalid int value: 'x'"},
		{"nonexistent id", []string{"SIM_TIME_SCALE=0.01"}, []string{"--model", "nonexistent-model-id"}, 1,
			"ValueError: Invalid repository ID or local directory specified: 'nonexistent-model-id'."},
		{"kv-none via env", []string{"SIM_TIME_SCALE=0.01", "SIM_FAIL=kv-none", "SIM_MODEL_CHECK=off"}, []string{"/m", "--port", "0"}, 1,
			"RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"},
		{"exit code override", []string{"SIM_TIME_SCALE=0.01", "SIM_FAIL=exit", "SIM_EXIT_CODE=137", "SIM_MODEL_CHECK=off"}, []string{"/m", "--port", "0"}, 137, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd, _, errw := startProcess(t, tc.env, tc.args...)
			if code := exitCode(t, cmd, 3*time.Second); code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, errw)
			}
			if !strings.Contains(errw.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errw)
			}
		})
	}
	t.Run("unrecognized serve text", func(t *testing.T) {
		t.Parallel()
		cmd, _, errw := startProcess(t, nil, "serve", "serve", "--model", "/m")
		exitCode(t, cmd, 3*time.Second)
		if lines := strings.Split(strings.TrimSpace(errw.String()), "\n"); lines[len(lines)-1] != "vllm: error: unrecognized arguments: serve" {
			t.Errorf("stderr:\n%s", errw)
		}
	})
}
