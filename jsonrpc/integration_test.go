package jsonrpc_test

import (
	"aima/httperr"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/jsonrpc"
)

// These tests drive a real daemon, Docker and the engine simulator through
// both transports. They fail without Docker; -short skips them.

func requireDocker(t *testing.T) string {
	t.Helper()
	testenv.RequireDocker(t)
	return testenv.EngineSimImage(t)
}

// request builds one JSON-RPC request line.
func request(id any, method string, params any) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	return string(b)
}

// rpcHTTP POSTs body to /rpc and returns the messages: SSE events when
// stream is set, else the one JSON reply.
func rpcHTTP(t *testing.T, url string, stream bool, body string) []msg {
	t.Helper()
	accept := ""
	if stream {
		accept = "text/event-stream"
	}
	resp := post(t, url+"/rpc", accept, body)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
	}
	if stream {
		var ms []msg
		for _, data := range sseEvents(t, resp.Body) {
			ms = append(ms, decodeMsg(t, data))
		}
		return ms
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	b, _ := io.ReadAll(resp.Body)
	if lines := splitLines(b); len(lines) != 1 {
		t.Fatalf("want one JSON reply, got %q", lines)
	}
	return []msg{decodeMsg(t, b)}
}

// result decodes a successful response's result.
func result[T any](t *testing.T, m msg) T {
	t.Helper()
	if m.Error != nil || m.Result == nil {
		t.Fatalf("want a result, got error %+v", m.Error)
	}
	var v T
	if err := json.Unmarshal(m.Result, &v); err != nil {
		t.Fatalf("result %s: %v", m.Result, err)
	}
	return v
}

type idOnly struct {
	ID string `json:"id"`
}

type startResult struct {
	Service struct{ ID, Status string } `json:"service"`
}

// checkStart checks a real service.start with wait: progress notifications
// for request id whose phases come in order, then a running service.
func checkStart(t *testing.T, ms []msg, id string) {
	t.Helper()
	var phases []string
	for _, m := range ms[:len(ms)-1] {
		if m.Method != jsonrpc.MethodProgress && m.Method != jsonrpc.MethodLog {
			t.Fatalf("unexpected message before the response: %+v", m)
		}
		var p struct {
			ID    json.RawMessage `json:"id"`
			Event struct{ Type, Phase string }
		}
		if err := json.Unmarshal(m.Params, &p); err != nil || string(p.ID) != id {
			t.Fatalf("notification %s, want id %s", m.Params, id)
		}
		if m.Method == jsonrpc.MethodProgress && p.Event.Type == "phase" {
			phases = append(phases, p.Event.Phase)
		}
	}
	want := []string{"cleanup", "schedule", "pull", "create", "start", "loading", "health_check"}
	i := 0
	for _, p := range phases {
		if i < len(want) && p == want[i] {
			i++
		}
	}
	if i != len(want) {
		t.Fatalf("phases %v, want %v in order", phases, want)
	}
	t.Logf("%d notifications; phases %v", len(ms)-1, phases)
	last := ms[len(ms)-1]
	if string(last.ID) != id {
		t.Fatalf("last message is not the response to %s: %+v", id, last)
	}
	if st := result[startResult](t, last); st.Service.Status != "running" {
		t.Fatalf("service %s after start: %s", st.Service.ID, st.Service.Status)
	}
}

// apiError is the HTTP API's error message for op with input, to compare
// with the JSON-RPC error for the same input.
func apiError(t *testing.T, base, path, input string) string {
	t.Helper()
	resp := post(t, base+path, "", input)
	var body httperr.Body
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error.Message == "" {
		t.Fatalf("HTTP API %s: %d %v", path, resp.StatusCode, err)
	}
	return body.Error.Message
}

func checkNotFound(t *testing.T, m msg, want string) {
	t.Helper()
	if m.Error == nil || m.Error.Code != jsonrpc.CodeNotFound || m.Error.Data == nil || m.Error.Data.Kind != "not_found" {
		t.Fatalf("want -32004 not_found, got %+v", m.Error)
	}
	if m.Error.Message != want {
		t.Errorf("message %q differs from the HTTP API's %q", m.Error.Message, want)
	}
}

func TestIntegrationHTTP(t *testing.T) {
	image := requireDocker(t)
	d := daemontest.Start(t, testenv.SimConfig(t, testenv.SimConfigOptions{Image: image}), daemontest.Options{})

	model := result[idOnly](t, rpcHTTP(t, d.URL, false, request(1, "model.add", map[string]any{"path": testenv.MakeModel(t, "qwen-tiny")}))[0])
	svc := result[idOnly](t, rpcHTTP(t, d.URL, false, request(2, "service.create", map[string]any{"model_id": model.ID, "engine_type": "vllm"}))[0])
	testenv.RemoveContainersWithLabel(t, "aima.service", svc.ID)

	ms := rpcHTTP(t, d.URL, true, request("start", "service.start", map[string]any{"service_id": svc.ID, "wait": true, "timeout_seconds": 120}))
	checkStart(t, ms, `"start"`)

	st := rpcHTTP(t, d.URL, false, request(3, "service.status", map[string]any{"service_id": svc.ID}))[0]
	if s := result[struct{ Status string }](t, st); s.Status != "running" {
		t.Fatalf("status %q", s.Status)
	}

	input := `{"service_id":"no-such-service"}`
	nf := rpcHTTP(t, d.URL, false, `{"jsonrpc":"2.0","id":4,"method":"service.status","params":`+input+`}`)[0]
	checkNotFound(t, nf, apiError(t, d.URL, "/api/service/status", input))
}

func TestIntegrationStdio(t *testing.T) {
	image := requireDocker(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{
		Config:        testenv.SimConfig(t, testenv.SimConfigOptions{Image: image}),
		HealthTimeout: hangGuard, StopTimeout: 30 * time.Second,
	})
	bin, addr := d.Bin, d.Addr

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rpc := startRPC(t, ctx, bin, addr)

	// A batch: two requests and a notification -> two responses.
	modelDir := testenv.MakeModel(t, "qwen-tiny")
	rpc.send(t, "["+request(1, "model.add", map[string]any{"path": modelDir})+","+
		request(2, "health.check", nil)+`,{"jsonrpc":"2.0","method":"health.check"}]`)
	var batch []json.RawMessage
	if err := json.Unmarshal(rpc.recvLine(t), &batch); err != nil || len(batch) != 2 {
		t.Fatalf("batch reply: %v %d", err, len(batch))
	}
	model := result[idOnly](t, decodeMsg(t, batch[0]))
	if m := decodeMsg(t, batch[1]); string(m.ID) != "2" || m.Error != nil {
		t.Fatalf("health.check in the batch: %+v", m)
	}

	// A parse error leaves the connection usable.
	rpc.send(t, `{"jsonrpc":`)
	if m := decodeMsg(t, rpc.recvLine(t)); m.Error == nil || m.Error.Code != jsonrpc.CodeParseError {
		t.Fatalf("want -32700, got %+v", m)
	}

	rpc.send(t, request(3, "service.create", map[string]any{"model_id": model.ID, "engine_type": "vllm"}))
	svc := result[idOnly](t, decodeMsg(t, rpc.recvLine(t)))
	testenv.RemoveContainersWithLabel(t, "aima.service", svc.ID)

	rpc.send(t, request(4, "service.start", map[string]any{"service_id": svc.ID, "wait": true, "timeout_seconds": 120}))
	var ms []msg
	for {
		m := decodeMsg(t, rpc.recvLine(t))
		ms = append(ms, m)
		if m.Method == "" {
			break
		}
	}
	checkStart(t, ms, "4")

	input := `{"service_id":"no-such-service"}`
	rpc.send(t, `{"jsonrpc":"2.0","id":5,"method":"service.status","params":`+input+`}`)
	checkNotFound(t, decodeMsg(t, rpc.recvLine(t)), apiError(t, "http://"+addr, "/api/service/status", input))

	rpc.close(t)
}
