package jsonrpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"aima/errs"
	"aima/events"
	"aima/jsonrpc"
	"aima/tools"
)

// script is a fake operation body.
type script func(ctx context.Context, raw json.RawMessage, rep tools.Reporter) (any, error)

// fakeCaller runs scripted operations for protocol tests. An operation
// without a script that mutates state is handed to the real op.Call with a
// read-only, empty Env: its input is decoded strictly by the real schema
// (so invalid params carry the real field), and a valid input is refused
// by the read-only check before anything touches the Env.
type fakeCaller struct {
	scripts map[string]script // by snake_case op name
}

func (f *fakeCaller) Call(ctx context.Context, op tools.Op, raw json.RawMessage, rep tools.Reporter) (any, error) {
	if s, ok := f.scripts[op.Name()]; ok {
		return s(ctx, raw, rep)
	}
	if !op.Annotations().ReadOnly {
		return op.Call(ctx, &tools.Domain{ReadOnly: true}, raw, rep)
	}
	return nil, errs.New(errs.Internal, "fake caller: no script for %s", op.Name())
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// newFake returns a caller with health.check, service.status (not_found
// for "missing") and a service.start that reports two phases and a log
// line. If gate is non-nil, service.start signals started and then blocks
// until gate is closed or ctx ends.
func newFake(started chan<- struct{}, gate <-chan struct{}) *fakeCaller {
	return &fakeCaller{scripts: map[string]script{
		"health_check": func(context.Context, json.RawMessage, tools.Reporter) (any, error) {
			return map[string]any{"status": "ok"}, nil
		},
		"service_status": func(_ context.Context, raw json.RawMessage, _ tools.Reporter) (any, error) {
			var in struct {
				ServiceID string `json:"service_id"`
			}
			if err := json.Unmarshal(raw, &in); err != nil {
				return nil, errs.Invalid("", "%v", err)
			}
			if in.ServiceID == "missing" {
				return nil, errs.NotFoundf("service %q not found", in.ServiceID)
			}
			return map[string]any{"id": in.ServiceID, "status": "running"}, nil
		},
		"service_start": func(ctx context.Context, raw json.RawMessage, rep tools.Reporter) (any, error) {
			if started != nil {
				started <- struct{}{}
			}
			if gate != nil {
				select {
				case <-gate:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			rep.Event(events.Event{Seq: 1, ServiceID: "s1", Type: events.TypePhase, Phase: "pull", Time: t0})
			rep.Log(tools.LogLine{Stream: "stdout", Time: t0, Text: "loading weights"})
			rep.Event(events.Event{Seq: 2, ServiceID: "s1", Type: events.TypePhase, Phase: "health_check", Time: t0})
			return json.RawMessage(`{"service":{"id":"s1","status":"running"}}`), nil
		},
	}}
}

// msg is any JSON-RPC message on the wire: a response or a notification.
type msg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	HasID   bool            `json:"-"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   *jsonrpc.Error  `json:"error"`
}

func decodeMsg(t *testing.T, b []byte) msg {
	t.Helper()
	var m msg
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not a JSON-RPC message: %v: %s", err, b)
	}
	var members map[string]json.RawMessage
	_ = json.Unmarshal(b, &members)
	_, m.HasID = members["id"]
	if m.JSONRPC != "2.0" {
		t.Fatalf("jsonrpc member %q in %s", m.JSONRPC, b)
	}
	return m
}

// transport sends one message (a line, or a body) and returns what came
// back: each JSON value, in order (nothing for no reply).
type transport struct {
	name string
	send func(t *testing.T, c tools.Caller, opts jsonrpc.Options, in string) [][]byte
}

var transports = []transport{
	{"stdio", func(t *testing.T, c tools.Caller, opts jsonrpc.Options, in string) [][]byte {
		var out bytes.Buffer
		if err := jsonrpc.Serve(t.Context(), strings.NewReader(in+"\n"), &out, c, opts); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		return splitLines(out.Bytes())
	}},
	{"http", func(t *testing.T, c tools.Caller, opts jsonrpc.Options, in string) [][]byte {
		srv := httptest.NewServer(jsonrpc.Handler(c, opts))
		defer srv.Close()
		resp, err := http.Post(srv.URL+"/rpc", "application/json", strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusNoContent {
			if len(body) != 0 {
				t.Fatalf("204 with a body: %s", body)
			}
			return nil
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		return splitLines(body)
	}},
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			out = append(out, l)
		}
	}
	return out
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("compact %q: %v", s, err)
	}
	return b.String()
}

// sseEvents reads a text/event-stream body into its events' data.
func sseEvents(t *testing.T, r io.Reader) [][]byte {
	t.Helper()
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, block := range strings.Split(string(body), "\n\n") {
		if strings.TrimSpace(block) == "" {
			continue
		}
		var event, data string
		for _, l := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(l, "event: "); ok {
				event = v
			} else if v, ok := strings.CutPrefix(l, "data: "); ok {
				data += v
			}
		}
		if event != "message" {
			t.Fatalf("SSE event %q, want message: %q", event, block)
		}
		out = append(out, []byte(data))
	}
	return out
}
