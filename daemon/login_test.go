package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// Wrong tokens are throttled per client address on every front-end: after
// a few wrong logins from one address, a request from it to /api, /rpc,
// /mcp or /v1 is answered 429 with Retry-After even with the right token,
// while another address is served. Each failure is logged, never the
// token. Before, 400 wrong logins took 2.7 s with no delay and no log line.
func TestWrongTokensThrottledOnEveryFrontEnd(t *testing.T) {
	const token = "the-daemon-token"
	d := limitsDaemon(t, "", token)
	client := func(src string) *http.Client {
		return &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
	}
	send := func(c *http.Client, method, path, body, bearer string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, d.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	guesser, other := client("127.0.0.6"), client("127.0.0.7")
	codes := map[int]int{}
	for i := range 20 {
		codes[send(guesser, http.MethodPost, "/auth/login", fmt.Sprintf(`{"token":"guess-%d"}`, i), "").StatusCode]++
	}
	if codes[401] == 0 || codes[401] > 6 || codes[429] != 20-codes[401] {
		t.Fatalf("20 wrong logins answered %v, want a few 401 then 429", codes)
	}
	frontEnds := []struct{ method, path, body string }{
		{http.MethodGet, "/api/service/list", ""},
		{http.MethodPost, "/rpc", `{"jsonrpc":"2.0","id":1,"method":"system.info"}`},
		{http.MethodPost, "/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		{http.MethodGet, "/v1/models", ""},
	}
	for _, fe := range frontEnds {
		resp := send(guesser, fe.method, fe.path, fe.body, token)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s from the locked-out address: %d, Retry-After %q", fe.method, fe.path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if resp := send(other, fe.method, fe.path, fe.body, token); resp.StatusCode == 401 || resp.StatusCode == 429 {
			t.Errorf("%s %s from another address: %d", fe.method, fe.path, resp.StatusCode)
		}
	}
	logs := d.Logs.String()
	if n := strings.Count(logs, "authentication failed"); n != codes[401] {
		t.Errorf("%d failures logged, want %d", n, codes[401])
	}
	if strings.Contains(logs, "guess-") || strings.Contains(logs, token) {
		t.Error("the daemon's log holds a token")
	}
}
