package daemon_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/runtime/fakeruntime"
	"aima/services"
)

// limitsDaemon is an in-process daemon on the fake runtime whose config
// has the given http section (YAML lines under "http:").
func limitsDaemon(t *testing.T, httpSection string, token string) *daemontest.Daemon {
	t.Helper()
	fr := fakeruntime.New(fakeruntime.WithImages("fake/vllm:1"))
	t.Cleanup(fr.Close)
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Image: "fake/vllm:1", Extra: "http:\n" + httpSection})
	return daemontest.Start(t, cfg, daemontest.Options{Runtime: fr, Token: token})
}

// dialFrom opens a TCP connection to the daemon from a loopback source
// address of its own (127.0.0.N), so a test can be several clients.
func dialFrom(t *testing.T, d *daemontest.Daemon, src string) net.Conn {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := dialer.Dial("tcp", strings.TrimPrefix(d.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin reads c until the daemon closes it or ctx ends, and returns
// what it read and whether the connection was closed.
func closedWithin(ctx context.Context, c net.Conn) (string, bool) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	b, err := io.ReadAll(c)
	return string(b), err == nil || isReset(err)
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// A body trickled a byte at a time is cut once body_timeout has passed
// since the request began: the connection is answered and closed while
// the client is still sending. Before, nothing bounded a body's time.
func TestTrickledBodyIsCut(t *testing.T) {
	d := limitsDaemon(t, "  body_timeout: 1s\n", "")
	c := dialFrom(t, d, "127.0.0.1")
	began := time.Now()
	if _, err := fmt.Fprintf(c, "POST /api/service/list HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	got, closed := closedWithin(ctx, c)
	if !closed {
		t.Fatalf("the trickled request's connection is still open after %s; read %q", time.Since(began), got)
	}
	if took := time.Since(began); took < time.Second {
		t.Errorf("cut after %s, before the 1 s body_timeout", took)
	}
	t.Logf("cut after %s; answer %q", time.Since(began), firstLine(got))
}

// An idle keep-alive connection is closed after idle_timeout; a request
// refused for want of the token closes its connection at once.
func TestIdleAndUnauthenticatedConnectionsAreClosed(t *testing.T) {
	d := limitsDaemon(t, "  idle_timeout: 1s\n", "s3cret-token")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	idle := dialFrom(t, d, "127.0.0.1")
	fmt.Fprintf(idle, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("health: %v %+v", err, resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	began := time.Now()
	// The response is read through its own reader: what the daemon sends
	// next (nothing) and its close reach the connection itself.
	if got, closed := closedWithin(ctx, idle); !closed || got != "" {
		t.Fatalf("idle keep-alive: closed %v after %s, read %q", closed, time.Since(began), got)
	}
	t.Logf("idle keep-alive closed after %s", time.Since(began))

	unauth := dialFrom(t, d, "127.0.0.1")
	fmt.Fprintf(unauth, "GET /api/service/list HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	got, closed := closedWithin(ctx, unauth)
	if !closed || !strings.HasPrefix(got, "HTTP/1.1 401") || !strings.Contains(got, "Connection: close") {
		t.Fatalf("unauthenticated: closed %v, read %q", closed, got)
	}
}

// A flood is capped: past max_connections_per_client, a client's new
// connections are answered 503 and closed on arrival while the ones it
// holds wait for their bodies; past max_connections, everyone's are.
// /metrics counts both.
func TestConnectionFloodIsCapped(t *testing.T) {
	const perClient, total = 20, 30
	d := limitsDaemon(t, fmt.Sprintf("  max_connections: %d\n  max_connections_per_client: %d\n  body_timeout: 5m\n", total, perClient), "")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	halfSent := "POST /api/service/list HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{"
	// flood opens n half-sent requests from src, waits until the daemon
	// has closed wantRefused of them and checks their answers.
	flood := func(src string, n, wantRefused int, why string) []net.Conn {
		answers := make(chan string, n)
		var conns []net.Conn
		for range n {
			c := dialFrom(t, d, src)
			conns = append(conns, c)
			if _, err := io.WriteString(c, halfSent); err != nil && !isReset(err) {
				t.Fatal(err)
			}
			go func() {
				if got, closed := closedWithin(ctx, c); closed {
					answers <- got
				}
			}()
		}
		for i := range wantRefused {
			select {
			case a := <-answers:
				// A refusal's answer may be lost to the reset of a
				// connection closed with unread request bytes.
				if a != "" && (!strings.HasPrefix(a, "HTTP/1.1 503") || !strings.Contains(a, why)) {
					t.Errorf("%s: refusal answered %q", src, a)
				}
			case <-ctx.Done():
				t.Fatalf("%s: %d of %d connections refused before the test's deadline", src, i, wantRefused)
			}
		}
		return conns
	}
	flood("127.0.0.2", perClient+5, 5, "(http.max_connections_per_client)")
	// Another client still gets in, up to the total.
	for _, c := range flood("127.0.0.3", total-perClient+5, 5, "(http.max_connections)") {
		_ = c.Close()
	}
	// The second client's connections are gone; the first's are held.
	m := metrics(ctx, t, d, "127.0.0.4")
	if m[`aima_http_connections_refused_total{reason="per_client"}`] != 5 || m[`aima_http_connections_refused_total{reason="total"}`] < 5 ||
		m["aima_http_connections_open"] < perClient+1 {
		t.Errorf("connections on /metrics: %v", m)
	}
}

// metrics reads the aima_http_connections series from src, asking again
// while the daemon refuses the connection (it is full).
func metrics(ctx context.Context, t *testing.T, d *daemontest.Daemon, src string) map[string]float64 {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.URL+"/metrics", nil)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				out := map[string]float64{}
				for _, line := range strings.Split(string(b), "\n") {
					if strings.HasPrefix(line, "aima_http_connections_") {
						k, v, _ := strings.Cut(line, " ")
						out[k], _ = strconv.ParseFloat(v, 64)
					}
				}
				return out
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/metrics: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// An answer is not bounded by body_timeout: a POST whose body arrived at
// once and whose answer takes longer (a wait of 3 s with a 1 s
// body_timeout) gets the operation's own answer (here the wait's
// deadline_exceeded), not a connection cut or a request cancelled when
// the body's deadline passes.
func TestBodyTimeoutNeverCutsTheAnswer(t *testing.T) {
	d := limitsDaemon(t, "  body_timeout: 1s\n", "")
	ctx := t.Context()
	m, err := d.Domain.Models.Add(ctx, testenv.MakeModel(t, "qwen-wait"), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Domain.Services.Create(ctx, services.CreateSpec{ModelID: m.ID, EngineType: "vllm"})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"service_id":%q,"for":"running","timeout_seconds":3}`, s.ID)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.URL+"/api/service/wait", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(raw), `"deadline_exceeded"`) {
		t.Fatalf("wait of 3 s with a 1 s body_timeout: %d %s, %v; want the wait's own deadline_exceeded", resp.StatusCode, raw, err)
	}
}
