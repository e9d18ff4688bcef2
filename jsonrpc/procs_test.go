package jsonrpc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"aima/internal/testenv"
)

// hangGuard bounds how long a test waits for a process to answer at all,
// so a broken daemon fails the test instead of hanging it. It is no
// performance threshold: a passing run needs a fraction of it.
const hangGuard = 3 * time.Minute

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon runs `aima start` and waits until /health answers; the
// daemon is interrupted when the test ends. It returns host:port.
func startDaemon(t *testing.T, bin, config string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	log := &syncBuffer{}
	cmd := exec.Command(bin, "start", "--addr", addr, "--data-dir", filepath.Join(t.TempDir(), "data"), "--config", config)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-exited:
			t.Fatalf("daemon exited:\n%s", log.String())
		case <-ctx.Done():
			t.Fatalf("daemon did not answer /health: %v\n%s", err, log.String())
		case <-tick.C:
		}
	}
}

// rpcProc is a running `aima rpc`.
type rpcProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr *syncBuffer
	ctx    context.Context
}

func startRPC(t *testing.T, ctx context.Context, bin, addr string) *rpcProc {
	t.Helper()
	p := &rpcProc{cmd: exec.CommandContext(ctx, bin, "--addr", addr, "--output", "json", "rpc"), lines: make(chan []byte, 1024), stderr: &syncBuffer{}, ctx: ctx}
	p.cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			p.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("aima rpc stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *rpcProc) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("write to aima rpc: %v", err)
	}
}

// recvLine returns the next stdout line.
func (p *rpcProc) recvLine(t *testing.T) []byte {
	t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("aima rpc closed stdout; stderr:\n%s", p.stderr.String())
		}
		return l
	case <-guard.C:
		t.Fatalf("no answer from aima rpc; stderr:\n%s", p.stderr.String())
	case <-p.ctx.Done():
		t.Fatal(p.ctx.Err())
	}
	return nil
}

// close ends stdin: aima rpc must exit 0 with nothing more on stdout.
func (p *rpcProc) close(t *testing.T) {
	t.Helper()
	if err := p.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	for l := range p.lines {
		t.Errorf("unexpected output after the last response: %s", l)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("aima rpc: %v; stderr:\n%s", err, p.stderr.String())
	}
}
