package jsonrpc_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"aima/jsonrpc"
)

func post(t *testing.T, url, accept, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestHTTPMethodNotAllowed(t *testing.T) {
	srv := httptest.NewServer(jsonrpc.Handler(newFake(nil, nil), jsonrpc.Options{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: HTTP %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	checkResponse(t, body, want{id: "null", code: -32600, msg: "GET not allowed"})
}

func TestHTTPBodyTooLarge(t *testing.T) {
	h := jsonrpc.Handler(newFake(nil, nil), jsonrpc.Options{})
	big := `{"jsonrpc":"2.0","id":1,"method":"health.check","params":{"pad":"` + strings.Repeat("x", jsonrpc.DefaultMaxBodyBytes) + `"}}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/rpc", strings.NewReader(big)))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP %d, want 413", rec.Code)
	}
	checkResponse(t, rec.Body.Bytes(), want{id: "null", code: -32600, msg: "exceeds"})
}

func TestHTTPNotificationOnlyIs204(t *testing.T) {
	srv := httptest.NewServer(jsonrpc.Handler(newFake(nil, nil), jsonrpc.Options{}))
	defer srv.Close()
	for _, accept := range []string{"", "text/event-stream"} {
		resp := post(t, srv.URL, accept, `[{"jsonrpc":"2.0","method":"health.check"},{"jsonrpc":"2.0","method":"nope"}]`)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
			t.Fatalf("Accept %q: HTTP %d %q, want 204 and no body", accept, resp.StatusCode, body)
		}
	}
}

// With Accept: text/event-stream, a call's notifications stream as SSE
// events before its response.
func TestHTTPStreamsNotifications(t *testing.T) {
	srv := httptest.NewServer(jsonrpc.Handler(newFake(nil, nil), jsonrpc.Options{}))
	defer srv.Close()
	resp := post(t, srv.URL, "text/event-stream", `{"jsonrpc":"2.0","id":"s","method":"service.start","params":{"service_id":"s1","wait":true}}`)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("HTTP %d, Content-Type %q", resp.StatusCode, ct)
	}
	var ms []msg
	for _, data := range sseEvents(t, resp.Body) {
		ms = append(ms, decodeMsg(t, data))
	}
	if len(ms) != 4 {
		t.Fatalf("want 4 events, got %d", len(ms))
	}
	checkStartStream(t, ms, `"s"`)
}

// A batch over SSE: the notifications, then one event with the response
// array.
func TestHTTPStreamsBatch(t *testing.T) {
	srv := httptest.NewServer(jsonrpc.Handler(newFake(nil, nil), jsonrpc.Options{}))
	defer srv.Close()
	resp := post(t, srv.URL, "text/event-stream, application/json",
		`[{"jsonrpc":"2.0","id":1,"method":"service.start","params":{"service_id":"s1"}},{"jsonrpc":"2.0","id":2,"method":"health.check"}]`)
	events := sseEvents(t, resp.Body)
	if len(events) != 4 {
		t.Fatalf("want 3 notifications and the batch reply, got %d: %q", len(events), events)
	}
	for _, e := range events[:3] {
		if m := decodeMsg(t, e); m.Method == "" || m.HasID {
			t.Errorf("want a notification: %s", e)
		}
	}
	var replies []json.RawMessage
	if err := json.Unmarshal(events[3], &replies); err != nil || len(replies) != 2 {
		t.Fatalf("last event is not the batch reply: %s", events[3])
	}
	checkResponse(t, replies[0], want{id: "1"})
	checkResponse(t, replies[1], want{id: "2"})
}

// Without the SSE accept, a long call gets one JSON response and its
// notifications are dropped.
func TestHTTPPlainDropsNotifications(t *testing.T) {
	srv := httptest.NewServer(jsonrpc.Handler(newFake(nil, nil), jsonrpc.Options{}))
	defer srv.Close()
	resp := post(t, srv.URL, "", `{"jsonrpc":"2.0","id":1,"method":"service.start","params":{"service_id":"s1","wait":true}}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if lines := splitLines(body); len(lines) != 1 {
		t.Fatalf("want one JSON value, got %q", lines)
	}
	checkResponse(t, body, want{id: "1"})
}
