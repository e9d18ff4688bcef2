package httpguard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"aima/errs"
	"aima/httperr"
)

// reached is the stub behind the guard: 200 "reached".
var reached = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("reached")) })

func newGuard(t *testing.T, o Options) *Guard {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

type req struct {
	method, path, host, ct, body string
	headers                      map[string]string
	local                        string // the connection's local address
}

func (r req) do(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/api/model/list"
	}
	if r.host == "" {
		r.host = "127.0.0.1:9090"
	}
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	hr.Host = r.host
	if r.ct != "" {
		hr.Header.Set("Content-Type", r.ct)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	local := r.local
	if local == "" {
		local = "127.0.0.1:9090"
	}
	addr, _ := net.ResolveTCPAddr("tcp", local)
	hr = hr.WithContext(context.WithValue(hr.Context(), http.LocalAddrContextKey, addr))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	return rec
}

func errCode(t *testing.T, rec *httptest.ResponseRecorder) errs.Kind {
	t.Helper()
	if rec.Code < 400 {
		return ""
	}
	var b httperr.Body
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("status %d with Content-Type %q, want the JSON error body", rec.Code, ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Message == "" {
		t.Errorf("status %d: not the JSON error body: %s", rec.Code, rec.Body)
	}
	return b.Error.Code
}

const jsonCT = "application/json"

func TestGuardRules(t *testing.T) {
	g := newGuard(t, Options{
		AllowedHosts:   []string{"aima.internal", "box.lan:9090", "10.1.2.3"},
		AllowedOrigins: []string{"https://dash.example:8443", "http://localhost:5173"},
	})
	h := g.Wrap(reached)
	cases := []struct {
		name   string
		r      req
		status int
		code   errs.Kind
	}{
		{"curl JSON POST", req{ct: jsonCT, body: "{}"}, 200, ""},
		{"JSON with charset", req{ct: "application/json; charset=utf-8", body: "{}"}, 200, ""},
		{"GET", req{method: http.MethodGet}, 200, ""},
		{"HEAD", req{method: http.MethodHead}, 200, ""},
		{"localhost host", req{method: http.MethodGet, host: "localhost:1"}, 200, ""},
		{"localhost. host", req{method: http.MethodGet, host: "LOCALHOST.:9090"}, 200, ""},
		{"ipv6 loopback host", req{method: http.MethodGet, host: "[::1]:9090"}, 200, ""},
		{"127.0.0.0/8 host", req{method: http.MethodGet, host: "127.1.2.3"}, 200, ""},
		{"allowed host any port", req{method: http.MethodGet, host: "aima.internal:1234"}, 200, ""},
		{"allowed host:port", req{method: http.MethodGet, host: "box.lan:9090"}, 200, ""},
		{"allowed host, other port", req{method: http.MethodGet, host: "box.lan:9091"}, 403, errs.PermissionDenied},
		{"allowed address", req{method: http.MethodGet, host: "10.1.2.3:9090"}, 200, ""},
		{"address the connection arrived at", req{method: http.MethodGet, host: "192.168.7.7:9090", local: "192.168.7.7:9090"}, 200, ""},
		{"other address", req{method: http.MethodGet, host: "192.168.7.8:9090", local: "192.168.7.7:9090"}, 403, errs.PermissionDenied},
		{"foreign host", req{method: http.MethodGet, host: "evil.example:9090"}, 403, errs.PermissionDenied},
		{"lookalike host", req{method: http.MethodGet, host: "localhost.evil.example"}, 403, errs.PermissionDenied},
		{"empty host", req{method: http.MethodGet, host: " "}, 403, errs.PermissionDenied},
		{"DNS rebinding (Origin matches the rebound Host)", req{host: "evil.example:9090", ct: jsonCT, headers: map[string]string{"Origin": "http://evil.example:9090"}}, 403, errs.PermissionDenied},
		{"same-origin page", req{ct: jsonCT, headers: map[string]string{"Origin": "http://127.0.0.1:9090"}}, 200, ""},
		{"same host, other port", req{ct: jsonCT, headers: map[string]string{"Origin": "http://127.0.0.1:9091"}}, 403, errs.PermissionDenied},
		{"same host, https", req{ct: jsonCT, headers: map[string]string{"Origin": "https://127.0.0.1:9090"}}, 403, errs.PermissionDenied},
		{"localhost page on another port", req{ct: jsonCT, headers: map[string]string{"Origin": "http://localhost:3000"}}, 403, errs.PermissionDenied},
		{"configured origin", req{ct: jsonCT, headers: map[string]string{"Origin": "https://dash.example:8443"}}, 200, ""},
		{"configured origin, default port spelled", req{ct: jsonCT, headers: map[string]string{"Origin": "http://LOCALHOST:5173"}}, 200, ""},
		{"foreign origin", req{ct: jsonCT, headers: map[string]string{"Origin": "http://evil.example"}}, 403, errs.PermissionDenied},
		{"foreign origin GET", req{method: http.MethodGet, headers: map[string]string{"Origin": "http://evil.example"}}, 403, errs.PermissionDenied},
		{"null origin", req{ct: jsonCT, headers: map[string]string{"Origin": "null"}}, 403, errs.PermissionDenied},
		{"garbage origin", req{ct: jsonCT, headers: map[string]string{"Origin": "file:///etc"}}, 403, errs.PermissionDenied},
		{"simple text/plain POST, foreign origin", req{ct: "text/plain", body: `{"path":"m"}`, headers: map[string]string{"Origin": "http://evil.example"}}, 403, errs.PermissionDenied},
		{"simple text/plain POST", req{ct: "text/plain", body: `{"path":"m"}`}, 415, errs.InvalidArgument},
		{"form POST", req{ct: "application/x-www-form-urlencoded", body: "path=m"}, 415, errs.InvalidArgument},
		{"multipart POST", req{ct: "multipart/form-data; boundary=x", body: "--x--"}, 415, errs.InvalidArgument},
		{"missing Content-Type", req{body: "{}"}, 415, errs.InvalidArgument},
		{"PUT text", req{method: http.MethodPut, ct: "text/plain"}, 415, errs.InvalidArgument},
		{"DELETE without body", req{method: http.MethodDelete}, 200, ""},
		{"DELETE with a text body", req{method: http.MethodDelete, ct: "text/plain", body: "x"}, 415, errs.InvalidArgument},
		{"cross-site no-cors GET without Origin", req{method: http.MethodGet, headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}}, 403, errs.PermissionDenied},
		{"cross-site navigation", req{method: http.MethodGet, headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}}, 200, ""},
		{"same-origin fetch without Origin", req{method: http.MethodGet, headers: map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}}, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.r.do(t, h)
			if rec.Code != tc.status || errCode(t, rec) != tc.code {
				t.Fatalf("status %d %s, want %d %s", rec.Code, rec.Body, tc.status, tc.code)
			}
			if acao := rec.Header().Get("Access-Control-Allow-Origin"); acao != "" && tc.r.headers["Origin"] != "https://dash.example:8443" && tc.r.headers["Origin"] != "http://LOCALHOST:5173" {
				t.Errorf("CORS grant %q to %q", acao, tc.r.headers["Origin"])
			}
		})
	}
}

func TestCORS(t *testing.T) {
	h := newGuard(t, Options{AllowedOrigins: []string{"https://dash.example"}}).Wrap(reached)
	preflight := func(origin string) *httptest.ResponseRecorder {
		return req{method: http.MethodOptions, headers: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization",
		}}.do(t, h)
	}
	rec := preflight("https://dash.example")
	hd := rec.Header()
	if rec.Code != http.StatusNoContent || hd.Get("Access-Control-Allow-Origin") != "https://dash.example" ||
		!strings.Contains(hd.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(hd.Get("Access-Control-Allow-Headers"), "Content-Type") ||
		!strings.Contains(hd.Get("Access-Control-Allow-Headers"), "Authorization") || hd.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("configured preflight: %d %v", rec.Code, hd)
	}
	rec = preflight("http://evil.example")
	if rec.Code != http.StatusForbidden || rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Header().Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("foreign preflight: %d %v", rec.Code, rec.Header())
	}
	rec = req{ct: jsonCT, body: "{}", headers: map[string]string{"Origin": "https://dash.example"}}.do(t, h)
	if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "https://dash.example" || !strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "Mcp-Session-Id") {
		t.Errorf("configured origin request: %d %v", rec.Code, rec.Header())
	}
	// CORS stays closed without configuration, even for loopback pages.
	h = newGuard(t, Options{}).Wrap(reached)
	rec = req{method: http.MethodOptions, headers: map[string]string{"Origin": "http://127.0.0.1:9090", "Access-Control-Request-Method": "POST"}}.do(t, h)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("unconfigured same-origin preflight: %d %v", rec.Code, rec.Header())
	}
}

func TestTokenAndCookie(t *testing.T) {
	const token = "s3cret-token-value"
	now := time.Unix(1_800_000_000, 0)
	g := newGuard(t, Options{Token: token, Now: func() time.Time { return now },
		Public: func(path string) bool { return strings.HasPrefix(path, "/ui/") }})
	h := g.Wrap(reached)
	bearer := func(v string) map[string]string { return map[string]string{"Authorization": v} }
	cases := []struct {
		name   string
		r      req
		status int
		code   errs.Kind
	}{
		{"no token", req{ct: jsonCT}, 401, errs.Unauthenticated},
		{"wrong token", req{ct: jsonCT, headers: bearer("Bearer nope")}, 401, errs.Unauthenticated},
		{"prefix of the token", req{ct: jsonCT, headers: bearer("Bearer s3cret")}, 401, errs.Unauthenticated},
		{"wrong scheme", req{ct: jsonCT, headers: bearer("Basic " + token)}, 401, errs.Unauthenticated},
		{"right token", req{ct: jsonCT, headers: bearer("Bearer " + token)}, 200, ""},
		{"scheme in any case", req{ct: jsonCT, headers: bearer("bearer " + token)}, 200, ""},
		{"health without token", req{method: http.MethodGet, path: "/health"}, 200, ""},
		{"POST health without token", req{path: "/health", ct: jsonCT}, 401, errs.Unauthenticated},
		{"events stream without token", req{method: http.MethodGet, path: "/api/events"}, 401, errs.Unauthenticated},
		{"public page without token", req{method: http.MethodGet, path: "/ui/app.js"}, 200, ""},
		{"HEAD public page without token", req{method: http.MethodHead, path: "/ui/"}, 200, ""},
		{"POST to a public path without token", req{path: "/ui/app.js", ct: jsonCT}, 401, errs.Unauthenticated},
		{"public page from a foreign origin", req{method: http.MethodGet, path: "/ui/", headers: map[string]string{"Origin": "http://evil.example"}}, 403, errs.PermissionDenied},
		{"forged cookie", req{method: http.MethodGet, headers: map[string]string{"Cookie": CookieName + "=v1.9999999999.AAAA"}}, 401, errs.Unauthenticated},
		{"right token, foreign origin", req{ct: jsonCT, headers: map[string]string{"Authorization": "Bearer " + token, "Origin": "http://evil.example"}}, 403, errs.PermissionDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.r.do(t, h)
			if rec.Code != tc.status || errCode(t, rec) != tc.code {
				t.Fatalf("status %d %s, want %d %s", rec.Code, rec.Body, tc.status, tc.code)
			}
			if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if strings.Contains(rec.Body.String(), token) {
				t.Errorf("the answer contains the token: %s", rec.Body)
			}
		})
	}

	// Login: wrong token, unknown fields and text bodies are refused.
	for _, bad := range []req{
		{path: LoginPath, ct: jsonCT, body: `{"token":"nope"}`},
		{path: LoginPath, ct: jsonCT, body: `{"token":"` + token + `","x":1}`},
		{path: LoginPath, ct: "text/plain", body: `{"token":"` + token + `"}`},
		{path: LoginPath, method: http.MethodGet},
	} {
		rec := bad.do(t, h)
		if rec.Code < 400 || rec.Header().Get("Set-Cookie") != "" {
			t.Errorf("login %s %s %q: %d, cookie %q", bad.method, bad.ct, bad.body, rec.Code, rec.Header().Get("Set-Cookie"))
		}
	}
	rec := req{path: LoginPath, ct: jsonCT, body: `{"token":"` + token + `"}`}.do(t, h)
	cookies := rec.Result().Cookies()
	if rec.Code != 200 || len(cookies) != 1 {
		t.Fatalf("login: %d %s %v", rec.Code, rec.Body, cookies)
	}
	c := cookies[0]
	raw := rec.Header().Get("Set-Cookie")
	if c.Name != CookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge <= 0 {
		t.Errorf("login cookie %q", raw)
	}
	if strings.Contains(raw, token) {
		t.Errorf("the cookie carries the token itself: %q", raw)
	}
	withCookie := map[string]string{"Cookie": c.Name + "=" + c.Value}
	if rec := (req{method: http.MethodGet, path: "/api/events", headers: withCookie}).do(t, h); rec.Code != 200 {
		t.Errorf("GET with the login cookie: %d %s", rec.Code, rec.Body)
	}
	if rec := (req{ct: jsonCT, headers: withCookie}).do(t, h); rec.Code != 200 {
		t.Errorf("POST with the login cookie: %d %s", rec.Code, rec.Body)
	}
	// A cookie of another token, or past its expiry, is refused.
	other := newGuard(t, Options{Token: "other", Now: func() time.Time { return now }}).Wrap(reached)
	if rec := (req{method: http.MethodGet, headers: withCookie}).do(t, other); rec.Code != 401 {
		t.Errorf("cookie of another token: %d", rec.Code)
	}
	now = now.Add(CookieTTL + time.Second)
	if rec := (req{method: http.MethodGet, headers: withCookie}).do(t, h); rec.Code != 401 {
		t.Errorf("expired cookie: %d", rec.Code)
	}
	rec = req{path: LogoutPath, ct: jsonCT, body: "{}"}.do(t, h)
	if out := rec.Result().Cookies(); rec.Code != 200 || len(out) != 1 || out[0].MaxAge >= 0 || out[0].Value != "" {
		t.Errorf("logout: %d %v", rec.Code, rec.Header())
	}
}

func TestLoginWithoutToken(t *testing.T) {
	h := newGuard(t, Options{}).Wrap(reached)
	rec := req{path: LoginPath, ct: jsonCT, body: `{"token":"anything"}`}.do(t, h)
	var res LoginResult
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	if rec.Code != 200 || !res.Authenticated || res.TokenRequired || rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("login without a token configured: %d %s", rec.Code, rec.Body)
	}
}

func TestLoginCookieSecureOverTLS(t *testing.T) {
	g := newGuard(t, Options{Token: "t"})
	srv := httptest.NewTLSServer(g.Wrap(reached))
	defer srv.Close()
	r, _ := http.NewRequest(http.MethodPost, srv.URL+LoginPath, strings.NewReader(`{"token":"t"}`))
	r.Header.Set("Content-Type", jsonCT)
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("login over TLS: cookie %v, want Secure", resp.Header.Get("Set-Cookie"))
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const token = "tok-3f9a"
	s := Secret(token)
	v := struct {
		Addr  string
		Token Secret
	}{"x", s}
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("opts", "token", s, "opts", v)
	js, _ := json.Marshal(v)
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %d", v, v, v, s, s, s, s), logs.String(), string(js),
		errs.New(errs.Internal, "boom: %v", v).Error(), panicText(func() { panic(v) }),
	} {
		if strings.Contains(out, token) || strings.Contains(out, fmt.Sprintf("%x", token)) {
			t.Errorf("the token leaks: %s", out)
		}
	}
	if s.Reveal() != token {
		t.Error("Reveal does not return the token")
	}
}

func panicText(f func()) (s string) {
	defer func() { s = fmt.Sprint(recover()) }()
	f()
	return ""
}

func TestTokenFromEnv(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("token", "  file-token-123\n", 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		env       map[string]string
		want      Secret
		wantError string
	}{
		{"none", nil, "", ""},
		{"env", map[string]string{TokenEnv: "env-token"}, "env-token", ""},
		{"file", map[string]string{TokenFileEnv: good}, "file-token-123", ""},
		{"symlink to a file", map[string]string{TokenFileEnv: link}, "file-token-123", ""},
		{"both", map[string]string{TokenEnv: "a", TokenFileEnv: good}, "", "both"},
		{"missing file", map[string]string{TokenFileEnv: filepath.Join(dir, "nope")}, "", "no such file"},
		{"empty file", map[string]string{TokenFileEnv: write("empty", "\n", 0o600)}, "", "empty"},
		{"two lines", map[string]string{TokenFileEnv: write("two", "secret-a\nsecret-b\n", 0o600)}, "", "one line"},
		{"directory", map[string]string{TokenFileEnv: dir}, "", "not a regular file"},
		{"FIFO (must not block)", map[string]string{TokenFileEnv: fifo}, "", "not a regular file"},
		{"/dev/zero", map[string]string{TokenFileEnv: "/dev/zero"}, "", "not a regular file"},
		{"too large", map[string]string{TokenFileEnv: write("big", strings.Repeat("x", 5000), 0o600)}, "", "bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TokenFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantError == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got.Reveal(), err, tc.want.Reveal())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantError) || !errs.Is(err, errs.InvalidArgument) {
				t.Fatalf("error %v, want invalid_argument containing %q", err, tc.wantError)
			}
			for _, secret := range []string{"secret-a", "secret-b", "file-token"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the file's content: %v", err)
				}
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "localhost:9090": true, "[::1]:9090": true, "127.0.0.2:1": true,
		"0.0.0.0:9090": false, ":9090": false, "192.168.1.5:9090": false, "myhost:9090": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
