package mcp

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/errs"
	"aima/httperr"
	"aima/tools"
)

// initialize is a 2025-11-25 initialize request.
const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// listTools is a 2025-11-25 tools/list request.
const listTools = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

// The protocol eras the tests speak.
const (
	modern = "2026-07-28"
	legacy = "2025-11-25"
)

var eras = []string{modern, legacy}

// serveMCP serves the MCP transport (with aima's tools, none of which these
// tests call) on a loopback server and returns its base URL and the
// handler's session table. Session handling is the transport's own, so no
// daemon is needed (and the daemon, which imports this package, cannot be
// used from its internal tests).
func serveMCP(t *testing.T, opts HTTPOptions) (string, *sessions) {
	t.Helper()
	s := NewServer(noCalls{t}, Options{Version: "test"})
	opts.Logger = slog.New(slog.DiscardHandler)
	tr := Handler(s, opts).(*transport)
	srv := httptest.NewServer(tr)
	t.Cleanup(srv.Close)
	return srv.URL, tr.sessions
}

// noCalls is a tools.Caller for tests that never run an operation.
type noCalls struct{ t *testing.T }

func (c noCalls) Call(context.Context, tools.Op, json.RawMessage, tools.Reporter) (any, error) {
	c.t.Error("an operation was called")
	return nil, errs.New(errs.Internal, "no operations in this test")
}

// rawMCP sends one request to /mcp and returns the status, the session id
// header and the JSON error code of a refusal.
func rawMCP(t *testing.T, base, method, body string, headers map[string]string) (status int, session, code string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+Path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb httperr.Body
	if resp.StatusCode >= 400 {
		raw, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: status %d with Content-Type %q, want the JSON error body: %s", method, resp.StatusCode, ct, raw)
		}
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Message == "" {
			t.Errorf("%s: status %d: error body not JSON with a message: %v: %s", method, resp.StatusCode, err, raw)
		}
	}
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(eb.Error.Code)
}

func sessionHeader(id string) map[string]string {
	return map[string]string{"Mcp-Session-Id": id, "MCP-Protocol-Version": legacy}
}

// TestSessionRules: ids are the server's and checked, DELETE ends a
// session, a request without one is 400; the stateless era ignores all of
// it.
func TestSessionRules(t *testing.T) {
	base, _ := serveMCP(t, HTTPOptions{})
	status, id, _ := rawMCP(t, base, http.MethodPost, initialize, nil)
	if status != http.StatusOK || id == "" {
		t.Fatalf("initialize: status %d, session %q", status, id)
	}
	steps := []struct {
		name, method, body string
		headers            map[string]string
		status             int
		code               string
	}{
		{"no session header", http.MethodPost, listTools, map[string]string{"MCP-Protocol-Version": legacy}, http.StatusBadRequest, "invalid_argument"},
		{"made-up session", http.MethodPost, listTools, sessionHeader("aima-00000000000000000000000000000000"), http.StatusNotFound, "not_found"},
		{"mcp-go shaped made-up session", http.MethodPost, listTools, sessionHeader("mcp-session-0b8ba2b4-2b1f-4c3b-9d3c-7e6a1f0f9d11"), http.StatusNotFound, "not_found"},
		{"issued session", http.MethodPost, listTools, sessionHeader(id), http.StatusOK, ""},
		{"GET without session", http.MethodGet, "", map[string]string{"MCP-Protocol-Version": legacy}, http.StatusBadRequest, "invalid_argument"},
		{"GET with a made-up session", http.MethodGet, "", sessionHeader("aima-nope"), http.StatusNotFound, "not_found"},
		{"DELETE without session", http.MethodDelete, "", map[string]string{"MCP-Protocol-Version": legacy}, http.StatusBadRequest, "invalid_argument"},
		{"DELETE", http.MethodDelete, "", sessionHeader(id), http.StatusOK, ""},
		{"after DELETE", http.MethodPost, listTools, sessionHeader(id), http.StatusNotFound, "not_found"},
		{"DELETE again", http.MethodDelete, "", sessionHeader(id), http.StatusNotFound, "not_found"},
		{"stateless era ignores session ids", http.MethodPost,
			`{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`,
			map[string]string{"MCP-Protocol-Version": modern, "Mcp-Method": "tools/list", "Mcp-Session-Id": "aima-made-up"}, http.StatusOK, ""},
	}
	for _, st := range steps {
		status, _, code := rawMCP(t, base, st.method, st.body, st.headers)
		if status != st.status || code != st.code {
			t.Errorf("%s: status %d code %q, want %d %q", st.name, status, code, st.status, st.code)
		}
	}
}

// TestSessionTableIsBounded: many initialize calls keep at most
// MaxSessions live; the oldest are evicted and answer 404, the newest work.
func TestSessionTableIsBounded(t *testing.T) {
	const max, n = 8, 200
	base, sess := serveMCP(t, HTTPOptions{MaxSessions: max})
	var ids []string
	for range n {
		status, id, _ := rawMCP(t, base, http.MethodPost, initialize, nil)
		if status != http.StatusOK || id == "" {
			t.Fatalf("initialize: %d %q", status, id)
		}
		ids = append(ids, id)
	}
	if got := sess.len(); got != max {
		t.Fatalf("%d live sessions after %d initialize calls, want %d", got, n, max)
	}
	if status, _, _ := rawMCP(t, base, http.MethodPost, listTools, sessionHeader(ids[0])); status != http.StatusNotFound {
		t.Errorf("evicted session: status %d, want 404", status)
	}
	if status, _, _ := rawMCP(t, base, http.MethodPost, listTools, sessionHeader(ids[n-1])); status != http.StatusOK {
		t.Errorf("newest session: status %d, want 200", status)
	}
	if left := len(sess.takeEvicted()); left != 0 {
		t.Errorf("%d evicted sessions not yet cleaned out of mcp-go", left)
	}
}

// TestSessionIdleExpiry: a session idle for the TTL is gone; one in use
// stays.
func TestSessionIdleExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newSessions(10, time.Minute, func() time.Time { return now })
	idle, used := s.Generate(), s.Generate()
	for range 3 {
		now = now.Add(40 * time.Second)
		if !s.known(used) {
			t.Fatal("a session in use expired")
		}
	}
	if s.known(idle) {
		t.Error("a session idle for 2 minutes is still live (TTL 1 minute)")
	}
	if ev := s.takeEvicted(); len(ev) != 1 || ev[0] != idle {
		t.Errorf("evicted %v, want [%s]", ev, idle)
	}
	if _, err := s.Validate(idle); err == nil {
		t.Error("Validate accepted an expired session")
	}
	if _, err := s.Terminate("never-issued"); err != nil {
		t.Errorf("Terminate of an unknown id: %v", err)
	}
}

// TestSessionEndsWithGoSDKClient: the official client's legacy session is
// issued by aima, works, and is gone once the client closes it (DELETE);
// the stateless era has no session id at all.
func TestSessionEndsWithGoSDKClient(t *testing.T) {
	base, sess := serveMCP(t, HTTPOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, version := range eras {
		t.Run(version, func(t *testing.T) {
			cl := sdk.NewClient(&sdk.Implementation{Name: "aima-test", Version: "1"}, nil)
			cs, err := cl.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: base + Path, MaxRetries: -1}, &sdk.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cs.ListTools(ctx, nil); err != nil {
				t.Fatal(err)
			}
			id := cs.ID()
			if version == modern {
				if id != "" {
					t.Errorf("stateless session has id %q", id)
				}
				_ = cs.Close()
				return
			}
			if !strings.HasPrefix(id, "aima-") || !sess.known(id) {
				t.Fatalf("session id %q was not issued by aima", id)
			}
			if err := cs.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if status, _, _ := rawMCP(t, base, http.MethodPost, listTools, sessionHeader(id)); status != http.StatusNotFound {
				t.Errorf("closed session: status %d, want 404", status)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	base, _ := serveMCP(t, HTTPOptions{})
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"model_list","arguments":{"x":"` +
		strings.Repeat("a", maxBodyBytes) + `"}}}`
	status, _, code := rawMCP(t, base, http.MethodPost, big, nil)
	if status != http.StatusRequestEntityTooLarge || code != "invalid_argument" {
		t.Fatalf("status %d code %q, want 413 invalid_argument", status, code)
	}
}
