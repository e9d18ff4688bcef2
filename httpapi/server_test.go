package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"aima/errs"
	"aima/httpapi"
	"aima/httperr"
	"aima/tools"
)

// newServer serves an Env with no domain objects: every request below fails
// before an operation would touch them.
func newServer(t *testing.T, readOnly bool) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(httpapi.New(&tools.Domain{ReadOnly: readOnly, Version: "test"}, nil, log).Handler())
	t.Cleanup(srv.Close)
	return srv
}

type errorCase struct {
	name        string
	method      string
	path        string
	body        []byte
	header      map[string]string
	wantStatus  int
	wantCode    errs.Kind
	wantField   string // checked when non-empty
	wantMessage string // substring, checked when non-empty
	wantAllow   string // checked when non-empty
}

func (tc errorCase) run(t *testing.T, srv *httptest.Server) {
	t.Helper()
	var body io.Reader
	if tc.body != nil {
		body = bytes.NewReader(tc.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if tc.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range tc.header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", tc.method, tc.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if resp.StatusCode != tc.wantStatus {
		t.Errorf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, raw)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", resp.Header.Get("Content-Type"))
	}
	if tc.wantAllow != "" && resp.Header.Get("Allow") != tc.wantAllow {
		t.Errorf("Allow = %q, want %q", resp.Header.Get("Allow"), tc.wantAllow)
	}
	// Strictly the documented shape: {"error":{"code","message"[,"field"]}}.
	var eb struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
			Field   string  `json:"field"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil || eb.Error == nil || eb.Error.Code == nil || eb.Error.Message == nil {
		t.Fatalf("body %s is not {\"error\":{\"code\":...,\"message\":...}}: %v", raw, err)
	}
	if errs.Kind(*eb.Error.Code) != tc.wantCode {
		t.Errorf("code = %q, want %q; body %s", *eb.Error.Code, tc.wantCode, raw)
	}
	if *eb.Error.Message == "" {
		t.Error("empty message")
	}
	if tc.wantMessage != "" && !strings.Contains(*eb.Error.Message, tc.wantMessage) {
		t.Errorf("message %q does not mention %q", *eb.Error.Message, tc.wantMessage)
	}
	if tc.wantField != "" && eb.Error.Field != tc.wantField {
		t.Errorf("field = %q, want %q; body %s", eb.Error.Field, tc.wantField, raw)
	}
}

func TestErrorPaths(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	big := []byte(`{"model_id":"` + strings.Repeat("m", httpapi.MaxBodyBytes) + `","engine_type":"vllm"}`)
	tests := []errorCase{
		{name: "unknown route under /api, by GET", method: http.MethodGet, path: "/api/nope", wantStatus: 404, wantCode: errs.NotFound, wantMessage: "/api/nope"},
		{name: "unknown route under /api", method: http.MethodPost, path: "/api/service/bogus", body: []byte(`{}`), wantStatus: 404, wantCode: errs.NotFound},
		{name: "unknown group", method: http.MethodGet, path: "/api/widgets/list", wantStatus: 404, wantCode: errs.NotFound},
		{name: "GET on a POST-only op", method: http.MethodGet, path: "/api/service/create", wantStatus: 405, wantCode: errs.InvalidArgument, wantAllow: "POST", wantMessage: "POST"},
		{name: "GET with query on a POST-only op", method: http.MethodGet, path: "/api/service/start?service_id=x", wantStatus: 405, wantCode: errs.InvalidArgument, wantAllow: "POST"},
		{name: "PUT", method: http.MethodPut, path: "/api/service/create", body: []byte(`{}`), wantStatus: 405, wantCode: errs.InvalidArgument, wantAllow: "GET, POST"},
		{name: "DELETE on a read-only op", method: http.MethodDelete, path: "/api/service/status", wantStatus: 405, wantCode: errs.InvalidArgument, wantAllow: "GET, POST"},
		{name: "malformed JSON", method: http.MethodPost, path: "/api/service/create", body: []byte(`{"model_id":`), wantStatus: 400, wantCode: errs.InvalidArgument},
		{name: "JSON array body", method: http.MethodPost, path: "/api/service/create", body: []byte(`["m","vllm"]`), wantStatus: 400, wantCode: errs.InvalidArgument, wantMessage: "object"},
		{name: "body over 1 MiB", method: http.MethodPost, path: "/api/service/create", body: big, wantStatus: 413, wantCode: errs.InvalidArgument, wantMessage: "exceeds"},
		{name: "wrong type", method: http.MethodPost, path: "/api/service/create", body: []byte(`{"model_id":"m","engine_type":"vllm","port":"x"}`), wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "port"},
		{name: "unknown field", method: http.MethodPost, path: "/api/service/create", body: []byte(`{"model_id":"m","engine_type":"vllm","colour":"red"}`), wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "colour", wantMessage: "unknown field"},
		{name: "missing required field", method: http.MethodPost, path: "/api/service/create", body: []byte(`{"engine_type":"vllm"}`), wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "model_id"},
		{name: "empty body: required field", method: http.MethodPost, path: "/api/service/create", wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "model_id"},
		{name: "empty body, bad query", method: http.MethodPost, path: "/api/service/create?model_id=m&engine_type=vllm&port=x", wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "port"},
		{name: "GET bad integer query", method: http.MethodGet, path: "/api/service/events?service_id=s&after=abc", wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "after"},
		{name: "GET bad boolean query", method: http.MethodGet, path: "/api/service/logs?service_id=s&follow=maybe", wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "follow"},
		{name: "GET unknown query parameter", method: http.MethodGet, path: "/api/service/status?service_id=s&verbose=1", wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "verbose"},
		{name: "GET missing required query", method: http.MethodGet, path: "/api/service/status", wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "service_id"},
		{name: "event stream, bad after", method: http.MethodGet, path: "/api/events?service_id=s&after=x", wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "after"},
		// The catch-all "/" route matches every method, so a method
		// mismatch on a method-qualified route ("GET /api/events",
		// "GET /health") is a JSON 404, not ServeMux's plain-text 405.
		{name: "POST to the event stream", method: http.MethodPost, path: "/api/events", body: []byte(`{}`), wantStatus: 405, wantCode: errs.InvalidArgument},
		{name: "POST to /health", method: http.MethodPost, path: "/health", body: []byte(`{}`), wantStatus: 405, wantCode: errs.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, srv)
		})
	}
}

func TestReadOnlyServerHidesMutatingOps(t *testing.T) {
	t.Parallel()
	srv := newServer(t, true)
	for _, tc := range []errorCase{
		{name: "create", method: http.MethodPost, path: "/api/service/create", body: []byte(`{"model_id":"m","engine_type":"vllm"}`), wantStatus: 404, wantCode: errs.NotFound},
		{name: "start", method: http.MethodPost, path: "/api/service/start", body: []byte(`{"service_id":"s"}`), wantStatus: 404, wantCode: errs.NotFound},
		// Read-only ops are still served (and still validate).
		{name: "status", method: http.MethodGet, path: "/api/service/status", wantStatus: 400, wantCode: errs.InvalidArgument, wantField: "service_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, srv)
		})
	}
}

// Asking for an event stream moves the error into the stream: the response
// is 200 text/event-stream and ends with an "error" event carrying the same
// body as the JSON error.
func TestStreamedErrorIsAnSSEEvent(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/service/create", strings.NewReader(`{"model_id":"m","engine_type":"vllm","port":"x"}`))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	const prefix = "event: error\ndata: "
	i := strings.Index(string(raw), prefix)
	if i < 0 {
		t.Fatalf("no error event in %q", raw)
	}
	line, _, _ := strings.Cut(string(raw[i+len(prefix):]), "\n")
	var eb httperr.Body
	if err := json.Unmarshal([]byte(line), &eb); err != nil || eb.Error.Code != errs.InvalidArgument || eb.Error.Field != "port" {
		t.Fatalf("error event %q: %+v, %v", line, eb, err)
	}
}
