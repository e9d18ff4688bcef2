package jsonrpc_test

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"testing"
	"time"

	"aima/internal/testenv"
)

// hangGuard bounds how long a test waits for a process to answer at all,
// so a broken daemon fails the test instead of hanging it. It is no
// performance threshold: a passing run needs a fraction of it.
const hangGuard = 3 * time.Minute

// rpcProc is a running `aima rpc`.
type rpcProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr *testenv.SyncBuffer
	ctx    context.Context
}

func startRPC(t *testing.T, ctx context.Context, bin, addr string) *rpcProc {
	t.Helper()
	p := &rpcProc{cmd: exec.CommandContext(ctx, bin, "--addr", addr, "--output", "json", "rpc"), lines: make(chan []byte, 1024), stderr: &testenv.SyncBuffer{}, ctx: ctx}
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
