package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// SyncBuffer is a bytes.Buffer safe for a process (or a logger) writing and
// a test reading at the same time.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// DaemonOptions configures StartDaemon.
type DaemonOptions struct {
	// Config is the --config file (see SimConfig). Required.
	Config string
	// Bin is the aima binary; empty means BuildAima(t).
	Bin string
	// DataDir is the --data-dir; empty means a fresh "data" directory in
	// t.TempDir().
	DataDir string
	// Env is added to the daemon's environment (not to CLI runs), e.g.
	// DOCKER_HOST=unix://... for a SockProxy.
	Env []string
	// HealthTimeout bounds how long each life of the daemon may take to
	// answer /health with 200 (default 30 s).
	HealthTimeout time.Duration
	// StopTimeout is how long the cleanup waits after SIGINT before it
	// SIGKILLs the daemon (default 15 s).
	StopTimeout time.Duration
	// LogAlways logs the daemon's output at cleanup even when the test
	// passed (it is always logged when the test failed).
	LogAlways bool
}

// DaemonProc is an `aima start` subprocess on a loopback address. The test
// can SIGKILL or SIGTERM it and start it again on the same address and data
// dir (each start is one "life"); its output over all lives is kept and
// logged when the test fails. It is stopped with SIGINT when the test ends.
type DaemonProc struct {
	Bin, Addr, DataDir, Config string

	opts  DaemonOptions
	logs  SyncBuffer
	lives int

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
}

// healthClient polls /health without keeping connections, so no poll
// reuses a connection to an earlier life.
var healthClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// StartDaemon runs `aima start --addr 127.0.0.1:<free port> --data-dir ...
// --config ...` and waits until /health answers 200, failing the test
// (with the daemon's output) when the daemon exits first or does not answer
// within the health timeout.
func StartDaemon(t testing.TB, opts DaemonOptions) *DaemonProc {
	t.Helper()
	d := NewDaemon(t, opts)
	d.launch(t)
	return d
}

// NewDaemon prepares what StartDaemon runs without starting it: the test
// starts it with Restart, or expects it to be refused with StartRefused.
func NewDaemon(t testing.TB, opts DaemonOptions) *DaemonProc {
	t.Helper()
	if opts.Config == "" {
		t.Fatal("testenv.NewDaemon: no Config")
	}
	if opts.Bin == "" {
		opts.Bin = BuildAima(t)
	}
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(t.TempDir(), "data")
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = 30 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 15 * time.Second
	}
	d := &DaemonProc{Bin: opts.Bin, Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), DataDir: opts.DataDir, Config: opts.Config, opts: opts}
	t.Cleanup(func() {
		if d.Alive() {
			_ = d.proc().Signal(os.Interrupt)
			select {
			case <-d.Exited():
			case <-time.After(opts.StopTimeout):
				_ = d.proc().Kill()
				<-d.Exited()
			}
		}
		if t.Failed() || opts.LogAlways {
			t.Logf("daemon log:\n%s", d.logs.String())
		}
	})
	return d
}

// URL is the daemon's base URL, http://<Addr>.
func (d *DaemonProc) URL() string { return "http://" + d.Addr }

// Logs returns the daemon's output over all its lives so far.
func (d *DaemonProc) Logs() string { return d.logs.String() }

// Logf writes a marker line into the daemon's log, to tell in it when the
// test did what.
func (d *DaemonProc) Logf(format string, args ...any) {
	fmt.Fprintf(&d.logs, "----- "+format+" -----\n", args...)
}

func (d *DaemonProc) started() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

func (d *DaemonProc) proc() *os.Process {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.Process
}

// Exited is closed when the current life of the daemon has ended.
func (d *DaemonProc) Exited() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

// Alive reports whether the current life of the daemon still runs (false
// before the first one).
func (d *DaemonProc) Alive() bool {
	if !d.started() {
		return false
	}
	select {
	case <-d.Exited():
		return false
	default:
		return true
	}
}

// Restart starts a new life of the daemon (after Kill or Term, or the first
// one after NewDaemon) on the same address, data dir and config, and waits
// until it answers /health.
func (d *DaemonProc) Restart(t testing.TB) {
	t.Helper()
	if d.Alive() {
		t.Fatal("testenv: Restart of a daemon that still runs")
	}
	d.launch(t)
}

// launch starts a new life of the daemon and waits until it answers.
func (d *DaemonProc) launch(t testing.TB) {
	t.Helper()
	d.lives++
	life := d.lives
	d.Logf("daemon life %d, %s", life, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(d.Bin, "start", "--addr", d.Addr, "--data-dir", d.DataDir, "--config", d.Config)
	cmd.Env = append(os.Environ(), d.opts.Env...)
	cmd.Stdout, cmd.Stderr = &d.logs, &d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.exitErr = err
		d.mu.Unlock()
		close(done)
	}()
	deadline := time.Now().Add(d.opts.HealthTimeout)
	for {
		if resp, err := healthClient.Get(d.URL() + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			d.mu.Lock()
			err := d.exitErr
			d.mu.Unlock()
			t.Fatalf("daemon life %d exited before serving: %v\n%s", life, err, d.logs.String())
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon life %d did not answer /health in %s\n%s", life, d.opts.HealthTimeout, d.logs.String())
		}
	}
}

// PID is the process id of the current life of the daemon.
func (d *DaemonProc) PID() int { return d.proc().Pid }

// StartRefused runs `aima start` on the daemon's address, data dir and
// config once more (after Kill or Term), for a start the test expects to be
// refused: it waits up to timeout for the process to exit and returns its
// output and exit code, failing the test if it is still running then (it
// is killed). The output is appended to the daemon's log too.
func (d *DaemonProc) StartRefused(t testing.TB, timeout time.Duration) Result {
	t.Helper()
	if d.Alive() {
		t.Fatal("testenv: StartRefused while the daemon still runs")
	}
	d.Logf("refused start, %s", time.Now().Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.Bin, "start", "--addr", d.Addr, "--data-dir", d.DataDir, "--config", d.Config)
	cmd.Env = append(os.Environ(), d.opts.Env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, &d.logs), io.MultiWriter(&errb, &d.logs)
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("aima start still ran after %s; want it refused:\n%s", timeout, errb.String())
	}
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// Kill SIGKILLs the daemon and waits for it to be gone.
func (d *DaemonProc) Kill(t testing.TB) {
	t.Helper()
	d.Logf("SIGKILL at %s", time.Now().Format(time.RFC3339Nano))
	_ = d.proc().Kill()
	select {
	case <-d.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not die after SIGKILL")
	}
}

// Term SIGTERMs the daemon and returns its exit code and how long it took
// to exit; it fails the test (after a SIGKILL) when the daemon outlives
// bound.
func (d *DaemonProc) Term(t testing.TB, bound time.Duration) (int, time.Duration) {
	t.Helper()
	d.Logf("SIGTERM at %s", time.Now().Format(time.RFC3339Nano))
	t0 := time.Now()
	_ = d.proc().Signal(syscall.SIGTERM)
	select {
	case <-d.Exited():
	case <-time.After(bound):
		_ = d.proc().Kill()
		<-d.Exited()
		t.Fatalf("daemon did not exit within %s of SIGTERM", bound)
	}
	took := time.Since(t0)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.ProcessState.ExitCode(), took
}

// TimeLogs reads a service's whole log through the HTTP API
// (GET /api/service/logs?tail=-1) and returns the wall time, failing the
// test unless the answer is a 200 of at least minBytes: the HTTP column of
// the log benchmarks, on Docker and on Kubernetes alike.
func (d *DaemonProc) TimeLogs(tb testing.TB, serviceID string, minBytes int64) time.Duration {
	tb.Helper()
	t0 := time.Now()
	resp, err := http.Get(d.URL() + "/api/service/logs?tail=-1&service_id=" + serviceID)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	if err != nil || resp.StatusCode != http.StatusOK || n < minBytes {
		tb.Fatalf("GET logs: HTTP %d, %d bytes, %v", resp.StatusCode, n, err)
	}
	return took
}

// Get does one HTTP GET of path against the daemon.
func (d *DaemonProc) Get(path string) (int, []byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(d.URL() + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// GetJSON GETs path and decodes the answer into v, failing the test when
// either fails; it returns the HTTP status.
func (d *DaemonProc) GetJSON(t testing.TB, path string, v any) int {
	t.Helper()
	code, body, err := d.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return code
}

// DecodeJSON decodes s (a CLI's -o json output) into a T, failing the test
// when it is not one.
func DecodeJSON[T any](t testing.TB, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// Post does one HTTP POST of body, as JSON, to path against the daemon.
func (d *DaemonProc) Post(path string, body any) (int, []byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	c := http.Client{Timeout: 2 * time.Minute}
	resp, err := c.Post(d.URL()+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Result is the outcome of one CLI run.
type Result struct {
	Stdout, Stderr string
	Code           int // the exit code
}

// cliTimeout bounds one CLI run (a start with --wait included).
const cliTimeout = 5 * time.Minute

// runCLI runs the aima binary with args against the daemon (AIMA_ADDR).
// The error is set only when the CLI could not run at all.
func (d *DaemonProc) runCLI(args []string) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.Bin, args...)
	cmd.Env = append(os.Environ(), "AIMA_ADDR="+d.Addr)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
		err = nil
	}
	return r, err
}

// CLI runs `aima args...` against the daemon and returns its output and
// exit code; it fails the test only when the CLI cannot run at all.
func (d *DaemonProc) CLI(t testing.TB, args ...string) Result {
	t.Helper()
	r, err := d.runCLI(args)
	if err != nil {
		t.Fatalf("aima %v: %v", args, err)
	}
	return r
}

// MustCLI is CLI that fails the test on a non-zero exit.
func (d *DaemonProc) MustCLI(t testing.TB, args ...string) Result {
	t.Helper()
	r := d.CLI(t, args...)
	if r.Code != 0 {
		t.Fatalf("aima %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// RunCLI is CLI without a testing.TB, for goroutines: a CLI that cannot run
// at all is reported as exit code -1 with the error as its stderr.
func (d *DaemonProc) RunCLI(args ...string) Result {
	r, err := d.runCLI(args)
	if err != nil {
		r.Code, r.Stderr = -1, err.Error()
	}
	return r
}
