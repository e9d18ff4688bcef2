package mcp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"aima/internal/testenv"
	"aima/mcp"
)

// initialize is a 2025-11-25 initialize request; any request reaching
// mcp-go would do.
const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// post sends initialize to /mcp with extra headers and returns the status
// and the JSON error code, if any.
func post(t *testing.T, base string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+mcp.Path, strings.NewReader(initialize))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if resp.StatusCode != http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("status %d with Content-Type %q, want JSON", resp.StatusCode, ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error.Message == "" {
			t.Errorf("status %d: error body not JSON with a message: %v", resp.StatusCode, err)
		}
	}
	return resp.StatusCode, body.Error.Code
}

func TestOriginAndHost(t *testing.T) {
	base := serveDaemon(t, testenv.EngineSimRef, false, "")
	cases := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"no origin", nil, http.StatusOK},
		{"localhost origin", map[string]string{"Origin": "http://localhost:1234"}, http.StatusOK},
		{"127.0.0.1 origin", map[string]string{"Origin": "http://127.0.0.1:5173"}, http.StatusOK},
		{"ipv6 loopback origin", map[string]string{"Origin": "http://[::1]:8080"}, http.StatusOK},
		{"foreign origin", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"lookalike origin", map[string]string{"Origin": "http://localhost.evil.example"}, http.StatusForbidden},
		{"null origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"rebound host", map[string]string{"Host": "evil.example:80"}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code := post(t, base, tc.headers)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if status == http.StatusForbidden && code != mcp.CodeForbidden {
				t.Errorf("code %q, want %q", code, mcp.CodeForbidden)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	base := serveDaemon(t, testenv.EngineSimRef, false, "s3cret")
	cases := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"missing", nil, http.StatusUnauthorized},
		{"wrong", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"wrong scheme", map[string]string{"Authorization": "Basic s3cret"}, http.StatusUnauthorized},
		{"right", map[string]string{"Authorization": "Bearer s3cret"}, http.StatusOK},
		{"right, foreign origin", map[string]string{"Authorization": "Bearer s3cret", "Origin": "http://evil.example"}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code := post(t, base, tc.headers)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			// The daemon's token check in front of every route answers
			// before MCP's own: its error body, not MCP's code.
			if status == http.StatusUnauthorized && code == "" {
				t.Errorf("401 without an error code")
			}
		})
	}
}

func TestCheckExposure(t *testing.T) {
	cases := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:9090", "", true},
		{"localhost:9090", "", true},
		{"[::1]:9090", "", true},
		{"0.0.0.0:9090", "", false},
		{":9090", "", false},
		{"192.168.1.5:9090", "", false},
		{"myhost:9090", "", false},
		{"0.0.0.0:9090", "tok", true},
	}
	for _, tc := range cases {
		err := mcp.CheckExposure(tc.addr, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("mcp.CheckExposure(%q, %q) = %v, want ok=%v", tc.addr, tc.token, err, tc.ok)
		}
	}
	rec := httptest.NewRecorder()
	mcp.Disabled(mcp.CheckExposure("0.0.0.0:1", "")).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, mcp.Path, nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "AIMA_TOKEN") {
		t.Errorf("mcp.Disabled: %d %s", rec.Code, rec.Body.String())
	}
}

func TestBodyLimit(t *testing.T) {
	base := serveDaemon(t, testenv.EngineSimRef, false, "")
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"model_list","arguments":{"x":"` +
		strings.Repeat("a", mcp.MaxBodyBytes) + `"}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+mcp.Path, strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}
