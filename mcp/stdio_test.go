package mcp_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/internal/testenv"
	"aima/mcp"
)

// TestStdio runs the built binary twice: a daemon, and `aima mcp` as the
// subprocess an MCP client launches, driven by the go-sdk client in both
// protocol eras. The tools run in the daemon, through its HTTP API.
func TestStdio(t *testing.T) {
	testenv.RequireDocker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{})})
	bin, addr := d.Bin, d.Addr
	// The daemon binary mounts /mcp itself (loopback, no token).
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+mcp.Path, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("daemon /mcp: status %d", resp.StatusCode)
	}
	modelDir := testenv.MakeModel(t, "qwen-stdio")
	for _, version := range eras {
		t.Run(version, func(t *testing.T) {
			stderr := &testenv.SyncBuffer{}
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
			if err != nil || !res.IsError || field(res.Meta[mcp.MetaError], "code") != "not_found" {
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
	if err != nil || !res.IsError || field(res.Meta[mcp.MetaError], "code") != "unavailable" {
		t.Fatalf("service_list without a daemon: err %v, result %+v", err, res)
	}
}
