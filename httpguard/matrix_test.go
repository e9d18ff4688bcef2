package httpguard_test

import (
	"aima/httperr"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/httpguard"
	"aima/internal/testenv"
)

// The daemon of the matrix: the built binary, a token from a file, one
// extra allowed host and one allowed origin.
const (
	matrixToken  = "matrix-token-5d1e9c"
	allowedHost  = "aima.test"
	allowedOrign = "https://dash.example"
)

// family is one route family with a request that gets through the guard
// when it carries the token. ok is what the daemon then answers: success,
// or whatever it answers without a model or a service (a 404 from the
// OpenAI gateway, a 405 for a wrong method, a redirect); the matrix checks
// the guard, not the route.
type family struct {
	name, method, path, body string
	ok                       int // status of the request let through
	public                   bool
	answer                   string // in that answer's body: it came from the route, not a fallback
}

// families are every route family the daemon serves (the HTTP API's
// operations, streams, MCP, JSON-RPC, the OpenAI gateway, Prometheus, the
// guard's login and logout, the dashboard). TestMatrixCoversEveryRoute
// fails when a route is mounted that none of them reaches.
func families(modelDir string) []family {
	add := `{"path":"` + modelDir + `"}`
	return []family{
		{"api (state-changing)", http.MethodPost, "/api/model/add", add, http.StatusOK, false, ""},
		{"api (read-only)", http.MethodGet, "/api/model/list", "", http.StatusOK, false, `"total"`},
		{"json-rpc", http.MethodPost, "/rpc", `{"jsonrpc":"2.0","id":1,"method":"model.add","params":` + add + `}`, http.StatusOK, false, `"jsonrpc":"2.0"`},
		{"mcp", http.MethodPost, "/mcp", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, http.StatusOK, false, `"serverInfo"`},
		{"sse stream", http.MethodGet, "/api/events?service_id=svc-none", "", http.StatusOK, false, `event: error`},
		{"sse stream, wrong method", http.MethodPost, "/api/events", "", http.StatusMethodNotAllowed, false, `use GET`},
		// send asks for text/event-stream, so a followed log is an SSE stream.
		{"logs sse stream", http.MethodGet, "/api/service/logs?service_id=svc-none&follow=true", "", http.StatusOK, false, `event: error`},
		{"openai chat", http.MethodPost, "/v1/chat/completions", `{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`, http.StatusNotFound, false, `model_not_found`},
		{"openai models", http.MethodGet, "/v1/models", "", http.StatusOK, false, `"object":"list"`},
		{"prometheus", http.MethodGet, "/metrics", "", http.StatusOK, false, `aima_build_info`},
		{"prometheus engines", http.MethodGet, "/metrics/engines", "", http.StatusOK, false, ""},
		{"prometheus targets", http.MethodGet, "/metrics/targets", "", http.StatusOK, false, `[`},
		{"health", http.MethodGet, "/health", "", http.StatusOK, true, `"status":"ok"`},
		{"health, wrong method", http.MethodPost, "/health", "", http.StatusMethodNotAllowed, false, `use GET`},
		{"readiness", http.MethodGet, "/readyz", "", http.StatusOK, true, `"ready":true`},
		{"login", http.MethodPost, "/auth/login", `{"token":"` + matrixToken + `"}`, http.StatusOK, true, `"authenticated":true`},
		{"logout", http.MethodPost, "/auth/logout", "", http.StatusOK, true, `"authenticated":false`},
		{"dashboard root", http.MethodGet, "/", "", http.StatusFound, true, `href="/ui/"`},
		{"dashboard without slash", http.MethodGet, "/ui", "", http.StatusFound, true, `href="/ui/"`},
		{"dashboard page", http.MethodGet, "/ui/", "", http.StatusOK, true, `<title>aima</title>`},
		{"dashboard session", http.MethodGet, "/ui/session", "", http.StatusOK, true, `"token_required":true`},
		{"unknown route", http.MethodGet, "/nowhere/", "", http.StatusNotFound, false, `no route`},
		{"unknown route under /api", http.MethodGet, "/api/nowhere", "", http.StatusNotFound, false, `no route`},
	}
}

// shot is one request: a family's, reshaped by a case.
type shot struct {
	method, body string
	host         string
	headers      map[string]string
}

func send(t *testing.T, base string, f family, s shot) (*http.Response, []byte) {
	t.Helper()
	method, body := f.method, f.body
	if s.method != "" {
		method = s.method
	}
	if s.body != "" {
		body = s.body
	}
	if method == http.MethodPost && body == "" {
		body = "{}"
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+f.path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodGet || method == http.MethodOptions {
		req.Body, req.ContentLength = nil, 0
	}
	if s.host != "" {
		req.Host = s.host
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	// A redirect is the answer under test, not something to follow.
	noFollow := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := (&http.Client{Timeout: 30 * time.Second, CheckRedirect: noFollow}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

func hdr(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestBrowserMatrix sends browser-shaped requests to every route family of
// the built daemon (the same binary and wiring as `aima start`) and checks
// that each is refused the same way, that nothing they asked for happened,
// and that the normal clients still work.
func TestBrowserMatrix(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(matrixToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Image: testenv.EngineSimRef,
		Extra: "allowed_hosts: [" + allowedHost + "]\nallowed_origins: [\"" + allowedOrign + "\"]\n"})
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: cfg, Env: []string{"AIMA_TOKEN_FILE=" + tokenFile}})
	base, port := d.URL(), d.Addr[strings.LastIndex(d.Addr, ":")+1:]
	modelDir := testenv.MakeModel(t, "qwen-matrix")
	auth := "Bearer " + matrixToken
	const evil = "http://evil.example"

	refused := []struct {
		name   string
		s      shot
		status int
		code   string
	}{
		{"simple text/plain POST from a foreign page", shot{method: http.MethodPost, headers: hdr("Content-Type", "text/plain", "Origin", evil)}, 403, "permission_denied"},
		{"text/plain POST without Origin", shot{method: http.MethodPost, headers: hdr("Content-Type", "text/plain", "Authorization", auth)}, 415, "invalid_argument"},
		{"form POST", shot{method: http.MethodPost, headers: hdr("Content-Type", "application/x-www-form-urlencoded", "Authorization", auth)}, 415, "invalid_argument"},
		{"form POST from a foreign page", shot{method: http.MethodPost, headers: hdr("Content-Type", "application/x-www-form-urlencoded", "Origin", evil)}, 403, "permission_denied"},
		{"missing Content-Type", shot{method: http.MethodPost, headers: hdr("Authorization", auth)}, 415, "invalid_argument"},
		{"foreign Origin with JSON and the token", shot{headers: hdr("Content-Type", "application/json", "Authorization", auth, "Origin", evil)}, 403, "permission_denied"},
		{"localhost page on another port", shot{headers: hdr("Content-Type", "application/json", "Authorization", auth, "Origin", "http://localhost:3000")}, 403, "permission_denied"},
		{"Origin null", shot{headers: hdr("Content-Type", "application/json", "Authorization", auth, "Origin", "null")}, 403, "permission_denied"},
		{"foreign Host", shot{host: "evil.example:" + port, headers: hdr("Content-Type", "application/json", "Authorization", auth)}, 403, "permission_denied"},
		{"DNS rebinding (page and Host agree)", shot{host: "rebind.example:" + port, headers: hdr("Content-Type", "application/json", "Authorization", auth, "Origin", "http://rebind.example:"+port)}, 403, "permission_denied"},
		{"cross-site no-cors request", shot{headers: hdr("Content-Type", "application/json", "Authorization", auth, "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors")}, 403, "permission_denied"},
		{"preflight from a foreign page", shot{method: http.MethodOptions, headers: hdr("Origin", evil, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")}, 403, "permission_denied"},
	}
	for _, f := range families(modelDir) {
		for _, c := range refused {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				resp, raw := send(t, base, f, c.s)
				var eb httperr.Body
				if resp.StatusCode != c.status || json.Unmarshal(raw, &eb) != nil || string(eb.Error.Code) != c.code {
					t.Fatalf("status %d %s, want %d %s", resp.StatusCode, raw, c.status, c.code)
				}
				if g := resp.Header.Get("Access-Control-Allow-Origin"); g != "" {
					t.Errorf("CORS grant %q", g)
				}
			})
		}
	}
	// The CLI reads the token from the same kind of file.
	t.Setenv(httpguard.TokenEnv, "")
	t.Setenv(httpguard.TokenFileEnv, tokenFile)
	if n := modelCount(t, d); n != 0 {
		t.Fatalf("refused requests registered %d models", n)
	}

	allowed := []struct {
		name string
		s    shot
		cors bool
	}{
		{"curl with JSON and the token", shot{headers: hdr("Content-Type", "application/json", "Authorization", auth)}, false},
		{"same-origin page", shot{headers: hdr("Content-Type", "application/json", "Authorization", auth, "Origin", base)}, false},
		{"configured origin", shot{headers: hdr("Content-Type", "application/json", "Authorization", auth, "Origin", allowedOrign)}, true},
		{"configured host", shot{host: allowedHost + ":" + port, headers: hdr("Content-Type", "application/json", "Authorization", auth)}, false},
	}
	for _, f := range families(modelDir) {
		for _, c := range allowed {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				resp, raw := send(t, base, f, c.s)
				if resp.StatusCode != f.ok || !strings.Contains(string(raw), f.answer) {
					t.Fatalf("status %d %s, want %d with %q", resp.StatusCode, raw, f.ok, f.answer)
				}
				if g := resp.Header.Get("Access-Control-Allow-Origin"); (g == allowedOrign) != c.cors {
					t.Errorf("Access-Control-Allow-Origin %q", g)
				}
			})
		}
		t.Run(f.name+"/without the token", func(t *testing.T) {
			resp, raw := send(t, base, f, shot{headers: hdr("Content-Type", "application/json")})
			want := http.StatusUnauthorized
			if f.public {
				want = f.ok
			}
			if resp.StatusCode != want {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, raw, want)
			}
		})
		t.Run(f.name+"/preflight from the configured origin", func(t *testing.T) {
			resp, _ := send(t, base, f, shot{method: http.MethodOptions, headers: hdr("Origin", allowedOrign,
				"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")})
			h := resp.Header
			if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != allowedOrign ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Fatalf("preflight: %d %v", resp.StatusCode, h)
			}
		})
	}
	if n := modelCount(t, d); n != 1 {
		t.Errorf("%d models after the allowed requests, want 1", n)
	}

	t.Run("login cookie for an EventSource", func(t *testing.T) { loginCookie(t, base) })
	t.Run("CLI", func(t *testing.T) { cliToken(t, d, tokenFile) })
	t.Run("aima rpc", func(t *testing.T) { rpcRelay(t, d) })
	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		t.Run("MCP go-sdk client "+version, func(t *testing.T) { mcpWithToken(t, base, version) })
	}
	if logs := d.Logs(); strings.Contains(logs, matrixToken) {
		t.Errorf("the daemon's log shows the token:\n%s", logs)
	}
}

func modelCount(t *testing.T, d *testenv.DaemonProc) int {
	t.Helper()
	var out struct {
		Total int `json:"total"`
	}
	r := d.MustCLI(t, "model", "list", "-o", "json")
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("model list: %v: %s", err, r.Stdout)
	}
	return out.Total
}

// loginCookie: a page logs in once, then its EventSource (which cannot send
// headers) streams with the cookie alone; logout clears it.
func loginCookie(t *testing.T, base string) {
	f := family{path: "/auth/login", method: http.MethodPost, body: `{"token":"` + matrixToken + `"}`}
	resp, raw := send(t, base, f, shot{headers: hdr("Content-Type", "application/json", "Origin", base)})
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusOK || len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || cs[0].Path != "/" {
		t.Fatalf("login: %d %s %v", resp.StatusCode, raw, resp.Header.Values("Set-Cookie"))
	}
	if strings.Contains(string(raw), matrixToken) || strings.Contains(resp.Header.Get("Set-Cookie"), matrixToken) {
		t.Error("the login answer carries the token")
	}
	cookie := cs[0].Name + "=" + cs[0].Value
	events := family{method: http.MethodGet, path: "/api/events?service_id=svc-none"}
	resp, raw = send(t, base, events, shot{headers: hdr("Cookie", cookie, "Accept", "text/event-stream")})
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || !strings.Contains(string(raw), "event: error") {
		t.Fatalf("events with the cookie: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	resp, _ = send(t, base, family{method: http.MethodPost, path: "/auth/logout"}, shot{headers: hdr("Content-Type", "application/json", "Origin", base)})
	if cs := resp.Cookies(); resp.StatusCode != http.StatusOK || len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Fatalf("logout: %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
}

// cliToken: the built CLI with AIMA_TOKEN_FILE works; a wrong token is exit
// 7 naming the fix; an unreadable token file is exit 2 naming the file.
func cliToken(t *testing.T, d *testenv.DaemonProc, tokenFile string) {
	d.MustCLI(t, "service", "list")
	t.Setenv(httpguard.TokenFileEnv, "")
	t.Setenv(httpguard.TokenEnv, "wrong")
	if r := d.CLI(t, "service", "list"); r.Code != 7 || !strings.Contains(r.Stderr, "AIMA_TOKEN") {
		t.Errorf("wrong token: exit %d, stderr %q", r.Code, r.Stderr)
	}
	t.Setenv(httpguard.TokenEnv, "")
	missing := tokenFile + ".missing"
	t.Setenv(httpguard.TokenFileEnv, missing)
	if r := d.CLI(t, "service", "list"); r.Code != 2 || !strings.Contains(r.Stderr, missing) {
		t.Errorf("missing token file: exit %d, stderr %q", r.Code, r.Stderr)
	}
	t.Setenv(httpguard.TokenFileEnv, tokenFile)
}

// rpcRelay: `aima rpc` relays calls to the daemon with the token.
func rpcRelay(t *testing.T, d *testenv.DaemonProc) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.Bin, "--addr", d.Addr, "rpc")
	cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"model.list"}` + "\n")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), `"result"`) {
		t.Fatalf("aima rpc: %v: %s", err, out)
	}
}

// bearer adds the token to every request of the go-sdk client.
type bearer struct{ next http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+matrixToken)
	return b.next.RoundTrip(r)
}

func mcpWithToken(t *testing.T, base, version string) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tr := &sdk.StreamableClientTransport{Endpoint: base + "/mcp", MaxRetries: -1, HTTPClient: &http.Client{Transport: bearer{http.DefaultTransport}}}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "aima-test", Version: "1"}, nil).Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "model_list", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("model_list: %v %v", err, res)
	}
}
