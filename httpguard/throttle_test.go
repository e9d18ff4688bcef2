package httpguard

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/errs"
)

// syncBuf is a log sink for a test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Wrong tokens, at login or as bearer tokens, are logged without the token
// and throttled per client address: five are free, then each failure locks
// the address out for twice as long (1 s, 2 s, ...), during which every
// token from it, the right one included, is answered 429 (unavailable)
// with Retry-After; other addresses and login cookies are not held up;
// ten quiet minutes forgive.
func TestWrongTokensAreThrottled(t *testing.T) {
	const token = "the-right-token"
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	logs := &syncBuf{}
	g, err := New(Options{Token: token, Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Wrap(reached)
	from := func(remote string, r req) int {
		t.Helper()
		if r.headers == nil {
			r.headers = map[string]string{}
		}
		r.headers["X-Remote"] = remote
		rec := r.do(t, remoteAddr(h))
		if rec.Code == http.StatusTooManyRequests {
			if errCode(t, rec) != errs.Unavailable || rec.Header().Get("Retry-After") == "" || rec.Header().Get("Connection") != "close" {
				t.Errorf("429 answer: %v %s", rec.Header(), rec.Body)
			}
		}
		return rec.Code
	}
	login := func(tok string) req { return req{path: LoginPath, ct: jsonCT, body: `{"token":"` + tok + `"}`} }
	withBearer := func(tok string) req {
		return req{ct: jsonCT, headers: map[string]string{"Authorization": "Bearer " + tok}}
	}

	const a, b = "192.0.2.7:4000", "198.51.100.9:4000"
	for i := range freeFailures {
		if code := from(a, login(fmt.Sprintf("guess-%d", i))); code != 401 {
			t.Fatalf("wrong login %d: %d, want 401", i+1, code)
		}
	}
	if code := from(a, withBearer("guess-bearer")); code != 401 {
		t.Fatalf("sixth wrong token: %d, want 401 (and a lockout from now)", code)
	}
	for _, r := range []req{login(token), withBearer(token), login("guess-x")} {
		if code := from(a, r); code != 429 {
			t.Errorf("during the lockout: %d, want 429 whatever the token", code)
		}
	}
	if code := from(b, login(token)); code != 200 {
		t.Errorf("another address during a's lockout: %d", code)
	}
	cookie := g.mintCookie(now.Add(time.Hour))
	if code := from(a, req{ct: jsonCT, headers: map[string]string{"Cookie": CookieName + "=" + cookie}}); code != 200 {
		t.Errorf("a login cookie during the lockout: %d", code)
	}
	// The lockout ends after 1 s; the next failure locks out for 2 s.
	now = now.Add(time.Second)
	if code := from(a, withBearer(token)); code != 200 {
		t.Fatalf("right token after the lockout: %d", code)
	}
	if code := from(a, login("guess-y")); code != 401 {
		t.Fatal(code)
	}
	now = now.Add(1500 * time.Millisecond)
	if code := from(a, login(token)); code != 429 {
		t.Errorf("1.5 s into the second lockout: %d, want 429", code)
	}
	now = now.Add(500 * time.Millisecond)
	if code := from(a, login(token)); code != 200 {
		t.Errorf("after the second lockout: %d", code)
	}
	// Ten quiet minutes forgive.
	now = now.Add(forgetFailure)
	for i := range freeFailures {
		if code := from(a, login(fmt.Sprintf("later-%d", i))); code != 401 {
			t.Fatalf("wrong login %d after ten quiet minutes: %d, want 401", i+1, code)
		}
	}
	// Addresses of one IPv6 /64 are one client.
	for i := range freeFailures + 1 {
		from(fmt.Sprintf("[2001:db8:1:2::%x]:80", i+1), login("v6-guess"))
	}
	if code := from("[2001:db8:1:2:ffff::1]:80", login(token)); code != 429 {
		t.Errorf("another address of a locked-out /64: %d, want 429", code)
	}

	out := logs.String()
	// Every wrong token checked is logged: a's 5+1, one in its second
	// round, 5 after it was forgiven, and the /64's 6. Those refused
	// during a lockout were not checked.
	if n, want := strings.Count(out, "authentication failed"), 3*freeFailures+3; n != want {
		t.Errorf("%d failures logged, want %d:\n%s", n, want, out)
	}
	if !strings.Contains(out, "client=192.0.2.7") || !strings.Contains(out, "locked_out_for=1s") || !strings.Contains(out, "credential=login") {
		t.Errorf("log lines lack the client, the lockout or the credential kind:\n%s", out)
	}
	for _, secret := range []string{token, "guess-"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains a token (%q):\n%s", secret, out)
		}
	}
}

// The throttle's table is bounded: past maxTracked addresses, new ones
// share one entry, and forgiven entries are dropped.
func TestThrottleTableIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(func() time.Time { return now })
	for i := range maxTracked + 500 {
		th.fail(clientKeyOf(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255)))
	}
	if n := th.len(); n > maxTracked+1 {
		t.Fatalf("%d entries, want at most %d", n, maxTracked+1)
	}
	now = now.Add(forgetFailure)
	th.fail(clientKeyOf("192.0.2.1:1"))
	if n := th.len(); n != 1 {
		t.Fatalf("%d entries after every other was forgiven, want 1", n)
	}
}

// remoteAddr sets the request's RemoteAddr from the X-Remote header the
// test put there (httptest.NewRequest always uses 192.0.2.1:1234).
func remoteAddr(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = r.Header.Get("X-Remote")
		h.ServeHTTP(w, r)
	})
}

// Authorized (what /ui/session answers without the token) is no way
// around the throttle: a wrong bearer token it sees counts, and a
// locked-out address is not authorized even with the right one.
func TestAuthorizedCountsAndHonoursLockouts(t *testing.T) {
	const token = "the-right-token"
	g, err := New(Options{Token: token, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(tok string) bool {
		r := httptest.NewRequest(http.MethodGet, "/ui/session", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return g.Authorized(r)
	}
	for i := range freeFailures + 1 {
		if ask(fmt.Sprintf("guess-%d", i)) {
			t.Fatal("a wrong token was authorized")
		}
	}
	if ask(token) {
		t.Error("the right token was authorized from a locked-out address: Authorized would tell a guesser which guess was right")
	}
}
