package jsonrpc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"aima/jsonrpc"
	"aima/tools"
)

// pipeConn is a live stdio connection to Serve over io.Pipe.
type pipeConn struct {
	in   *io.PipeWriter
	out  *bufio.Scanner
	done chan error
}

func dial(t *testing.T, ctx context.Context, c tools.Caller, opts jsonrpc.Options) *pipeConn {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	pc := &pipeConn{in: inW, out: bufio.NewScanner(outR), done: make(chan error, 1)}
	pc.out.Buffer(nil, 8<<20)
	go func() {
		err := jsonrpc.Serve(ctx, inR, outW, c, opts)
		outW.Close()
		pc.done <- err
	}()
	t.Cleanup(func() { inW.Close(); inR.Close(); outR.Close() })
	return pc
}

func (pc *pipeConn) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(pc.in, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (pc *pipeConn) recv(t *testing.T) msg {
	t.Helper()
	if !pc.out.Scan() {
		t.Fatalf("connection ended: %v", pc.out.Err())
	}
	return decodeMsg(t, pc.out.Bytes())
}

func TestStdioParseErrorKeepsConnection(t *testing.T) {
	pc := dial(t, t.Context(), newFake(nil, nil), jsonrpc.Options{})
	pc.send(t, `{"jsonrpc":"2.0",`)
	if m := pc.recv(t); m.Error == nil || m.Error.Code != jsonrpc.CodeParseError || string(m.ID) != "null" {
		t.Fatalf("want -32700 with id null, got %+v", m)
	}
	pc.send(t, `{"jsonrpc":"2.0","id":2,"method":"health.check"}`)
	if m := pc.recv(t); m.Error != nil || string(m.ID) != "2" {
		t.Fatalf("want the answer to id 2, got %+v", m)
	}
	pc.in.Close()
	if err := <-pc.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A long call does not block later requests on the same connection, and
// its notifications come before its response.
func TestStdioConcurrentRequests(t *testing.T) {
	started, gate := make(chan struct{}, 1), make(chan struct{})
	pc := dial(t, t.Context(), newFake(started, gate), jsonrpc.Options{})
	pc.send(t, `{"jsonrpc":"2.0","id":"start","method":"service.start","params":{"service_id":"s1","wait":true}}`)
	<-started
	pc.send(t, `{"jsonrpc":"2.0","id":"health","method":"health.check"}`)
	if m := pc.recv(t); string(m.ID) != `"health"` {
		t.Fatalf("want health.check answered while service.start runs, got %+v", m)
	}
	close(gate)
	checkStartStream(t, []msg{pc.recv(t), pc.recv(t), pc.recv(t), pc.recv(t)}, `"start"`)
}

// checkStartStream checks the fake service.start's messages: two progress
// notifications around a log line, then the response.
func checkStartStream(t *testing.T, ms []msg, id string) {
	t.Helper()
	wantMethods := []string{jsonrpc.MethodProgress, jsonrpc.MethodLog, jsonrpc.MethodProgress, ""}
	for i, m := range ms {
		if m.Method != wantMethods[i] {
			t.Fatalf("message %d: method %q, want %q", i, m.Method, wantMethods[i])
		}
		if m.Method == "" {
			if string(m.ID) != id || m.Error != nil || !strings.Contains(string(m.Result), `"running"`) {
				t.Fatalf("final response %+v", m)
			}
			continue
		}
		var p struct {
			ID    json.RawMessage `json:"id"`
			Event struct{ Phase string }
			Line  struct{ Stream, Text string }
		}
		if err := json.Unmarshal(m.Params, &p); err != nil || string(p.ID) != id {
			t.Fatalf("notification params %s (id want %s): %v", m.Params, id, err)
		}
		if m.HasID {
			t.Fatalf("a notification has an id member: %+v", m)
		}
		if i == 1 && (p.Line.Stream != "stdout" || p.Line.Text != "loading weights") {
			t.Errorf("log line %s", m.Params)
		}
		if i == 2 && p.Event.Phase != "health_check" {
			t.Errorf("progress %s", m.Params)
		}
	}
}

// At EOF Serve waits for in-flight calls and writes their responses.
func TestStdioEOFFlushesInFlight(t *testing.T) {
	started, gate := make(chan struct{}, 1), make(chan struct{})
	in := `{"jsonrpc":"2.0","id":1,"method":"service.start","params":{"service_id":"s1"}}` + "\n"
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- jsonrpc.Serve(t.Context(), strings.NewReader(in), &out, newFake(started, gate), jsonrpc.Options{})
	}()
	<-started
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) while a call was in flight", err)
	default:
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var ms []msg
	for _, l := range splitLines(out.Bytes()) {
		ms = append(ms, decodeMsg(t, l))
	}
	if len(ms) != 4 {
		t.Fatalf("want 3 notifications and a response, got %d lines:\n%s", len(ms), out.String())
	}
	checkStartStream(t, ms, "1")
}

// Canceling ctx cancels in-flight calls; their -32800 responses are still
// written before Serve returns.
func TestStdioCancelCancelsCalls(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{}, 1)
	pc := dial(t, ctx, newFake(started, make(chan struct{})), jsonrpc.Options{})
	pc.send(t, `{"jsonrpc":"2.0","id":9,"method":"service.start","params":{"service_id":"s1"}}`)
	<-started
	cancel()
	m := pc.recv(t)
	if m.Error == nil || m.Error.Code != jsonrpc.CodeCanceled || m.Error.Data == nil || m.Error.Data.Kind != "canceled" {
		t.Fatalf("want -32800 canceled, got %+v", m)
	}
	if err := <-pc.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve returned %v, want context.Canceled", err)
	}
}

// A line over the cap is answered with -32600 and discarded; the
// connection goes on. CRLF line ends and blank lines are fine.
func TestStdioLongLine(t *testing.T) {
	long := `{"jsonrpc":"2.0","id":1,"method":"health.check","params":{"pad":"` + strings.Repeat("x", 300) + `"}}`
	in := long + "\n\r\n\n" + `{"jsonrpc":"2.0","id":2,"method":"health.check"}` + "\r\n"
	var out bytes.Buffer
	if err := jsonrpc.Serve(t.Context(), strings.NewReader(in), &out, newFake(nil, nil), jsonrpc.Options{MaxLineBytes: 100}); err != nil {
		t.Fatal(err)
	}
	lines := splitLines(out.Bytes())
	if len(lines) != 2 {
		t.Fatalf("want 2 replies, got:\n%s", out.String())
	}
	first, second := decodeMsg(t, lines[0]), decodeMsg(t, lines[1])
	if first.Error == nil || first.Error.Code != jsonrpc.CodeInvalidRequest || !strings.Contains(first.Error.Message, "exceeds 100 bytes") {
		t.Errorf("long line: %s", lines[0])
	}
	if second.Error != nil || string(second.ID) != "2" {
		t.Errorf("after the long line: %s", lines[1])
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

// A broken stdout ends Serve with the write error.
func TestStdioWriteError(t *testing.T) {
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"health.check"}` + "\n")
	err := jsonrpc.Serve(t.Context(), in, failWriter{}, newFake(nil, nil), jsonrpc.Options{})
	if err == nil || !strings.Contains(err.Error(), "stdout closed") {
		t.Fatalf("Serve returned %v, want the write error", err)
	}
}
