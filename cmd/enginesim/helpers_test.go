package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is a concurrency-safe io.Writer that lets a test wait for output.
type sink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newSink() *sink { return &sink{changed: make(chan struct{})} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.buf.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return n, err
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor blocks until substr has been written or the timeout passes.
func (s *sink) waitFor(substr string, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok, ch := strings.Contains(s.buf.String(), substr), s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// modelDir makes a fake local model: just a config.json, like aima's tests mount.
func modelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := `{"architectures":["Qwen2ForCausalLM"],"torch_dtype":"bfloat16","max_position_embeddings":32768}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// simRun is one in-process simulator; cancel plays the role of SIGTERM.
type simRun struct {
	out, err *sink
	cancel   context.CancelFunc
	done     chan struct{}
	code     int
}

// startSim runs `enginesim args...` in-process with env as the environment.
func startSim(t *testing.T, env map[string]string, args ...string) *simRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &simRun{out: newSink(), err: newSink(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.code = run(ctx, args, envMap(env), r.out, r.err)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("simulator did not exit after cancel")
		}
	})
	return r
}

// wait returns the exit code, failing the test if it takes longer than timeout.
func (r *simRun) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(timeout):
		t.Fatalf("simulator still running after %v\nstdout:\n%s\nstderr:\n%s", timeout, r.out, r.err)
		return -1
	}
}

// exited reports whether the simulator has exited.
func (r *simRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// lastErrorLine finds the last `...Error: ...` line, the way aima extracts a
// failure reason, with the process/logger prefix removed.
func lastErrorLine(text string) string {
	var last string
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, "] "); i >= 0 && strings.HasPrefix(line, "(") && strings.Contains(line, " ERROR ") {
			line = line[i+2:]
		} else if i := strings.Index(line, ") "); i >= 0 && strings.HasPrefix(line, "(") {
			line = line[i+2:]
		}
		head, _, ok := strings.Cut(line, ": ")
		if ok && !strings.Contains(head, " ") && (strings.HasSuffix(head, "Error") || strings.HasSuffix(head, "Exception")) {
			last = line
		}
	}
	return last
}
