package mcp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for a subprocess writer and the test.
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

// startDaemonProc runs `aima start` as a subprocess and waits for /health.
func startDaemonProc(ctx context.Context, t *testing.T, bin, config string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "start", "--addr", addr, "--data-dir", filepath.Join(t.TempDir(), "data"), "--config", config)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		stop := time.NewTimer(15 * time.Second)
		defer stop.Stop()
		select {
		case <-exited:
		case <-stop.C:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	waitFor(ctx, t, "the daemon's /health", func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, logs.String)
	return addr
}

// TestStdio runs the built binary twice: a daemon, and `aima mcp` as the
// subprocess an MCP client launches, driven by the go-sdk client in both
// protocol eras. The tools run in the daemon, through its HTTP API.
func TestStdio(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	testenv.RequireDocker(t)
	bin := testenv.BuildAima(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	addr := startDaemonProc(ctx, t, bin, writeConfig(t, testenv.EngineSimImage(t)))
	// The daemon binary mounts /mcp itself (cli's mount, loopback, no token).
	if status, _ := post(t, "http://"+addr, nil); status != http.StatusOK {
		t.Fatalf("daemon /mcp: status %d", status)
	}
	modelDir := makeModel(t, "qwen-stdio")
	for _, version := range eras {
		t.Run(version, func(t *testing.T) {
			stderr := &syncBuffer{}
			cmd := exec.Command(bin, "--addr", addr, "mcp")
			cmd.Stderr = stderr
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("aima mcp stderr:\n%s", stderr.String())
				}
			})
			rec := newRecorder()
			cs := connect(ctx, t, &sdk.CommandTransport{Command: cmd}, version, rec)
			checkToolList(ctx, t, cs, false)
			if h := call(ctx, t, cs, "health_check", nil); h["status"] != "ok" {
				t.Errorf("health_check: %v", h)
			}
			lifecycle(ctx, t, cs, rec, modelDir)
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "service_status", Arguments: map[string]any{"service_id": "svc-nope"}})
			if err != nil || !res.IsError || field(res.Meta[MetaError], "code") != "not_found" {
				t.Errorf("unknown service through the daemon: err %v, result %+v", err, res)
			}
		})
	}
}

// TestStdioReadOnlyWithoutDaemon: `aima mcp --read-only` lists only
// read-only tools, and a call reports the missing daemon as unavailable.
func TestStdioReadOnlyWithoutDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the aima binary")
	}
	bin := testenv.BuildAima(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(bin, "--addr", addr, "mcp", "--read-only")
	cs := connect(ctx, t, &sdk.CommandTransport{Command: cmd}, modern, newRecorder())
	checkToolList(ctx, t, cs, true)
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "service_list"})
	if err != nil || !res.IsError || field(res.Meta[MetaError], "code") != "unavailable" {
		t.Fatalf("service_list without a daemon: err %v, result %+v", err, res)
	}
}
