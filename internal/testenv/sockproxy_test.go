package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// unixUpstream serves handle on a new Unix socket until the test ends.
func unixUpstream(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "aimaup")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "up.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); handle(c) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
		_ = os.RemoveAll(dir)
	})
	return path
}

func echoHandler(c net.Conn) { _, _ = io.Copy(c, c) }

func dialProxy(t *testing.T, p *SockProxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("unix", p.Path(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes a line and reads it back within a second.
func roundTrip(c net.Conn, r *bufio.Reader, line string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := fmt.Fprintln(c, line); err != nil {
		return "", err
	}
	got, err := r.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

// closedSoon reports whether the peer closes c within a second (a read
// that ends with EOF or a reset, not a timeout).
func closedSoon(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestSockProxyForwards(t *testing.T) {
	p := StartSockProxy(t, unixUpstream(t, echoHandler))
	if !strings.HasPrefix(p.Host(), "unix://") || len(p.Path()) > 100 {
		t.Fatalf("host %q path %q", p.Host(), p.Path())
	}
	c := dialProxy(t, p)
	r := bufio.NewReader(c)
	for _, msg := range []string{"hello", strings.Repeat("x", 100000), "bye"} {
		got, err := roundTrip(c, r, msg)
		if err != nil || got != msg {
			t.Fatalf("round trip of %d bytes: got %d bytes, err %v", len(msg), len(got), err)
		}
	}
	if acc, ref, live := p.Stats(); acc != 1 || ref != 0 || live != 1 {
		t.Fatalf("stats accepted=%d refused=%d live=%d, want 1 0 1", acc, ref, live)
	}
}

// A client that half-closes (done sending) still gets the answer.
func TestSockProxyHalfClose(t *testing.T) {
	p := StartSockProxy(t, unixUpstream(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "%d\n", n)
	}))
	c := dialProxy(t, p)
	if _, err := io.WriteString(c, "12345"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "5\n" {
		t.Fatalf("answer %q, err %v", got, err)
	}
}

func TestSockProxyCutAndRestore(t *testing.T) {
	p := StartSockProxy(t, unixUpstream(t, echoHandler))
	live := dialProxy(t, p)
	r := bufio.NewReader(live)
	if got, err := roundTrip(live, r, "before"); err != nil || got != "before" {
		t.Fatalf("before cut: %q %v", got, err)
	}

	p.Cut()
	if !p.IsCut() {
		t.Fatal("IsCut false after Cut")
	}
	if !closedSoon(live) {
		t.Fatal("a live connection was not closed by Cut")
	}
	for i := 0; i < 3; i++ {
		c := dialProxy(t, p) // the kernel accepts; the proxy closes at once
		if !closedSoon(c) {
			t.Fatalf("connection %d made while cut was not closed at once", i)
		}
	}
	if _, ref, n := p.Stats(); ref != 3 || n != 0 {
		t.Fatalf("while cut: refused=%d live=%d, want 3 0", ref, n)
	}

	p.Restore()
	c := dialProxy(t, p)
	r = bufio.NewReader(c)
	if got, err := roundTrip(c, r, "after"); err != nil || got != "after" {
		t.Fatalf("after restore: %q %v", got, err)
	}
}

// An HTTP client (what the Docker client is) fails fast while cut and
// works again after Restore, reusing nothing stale.
func TestSockProxyHTTP(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "pong "+r.URL.Path)
	})}
	dir, err := os.MkdirTemp("", "aimaup")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	up := filepath.Join(dir, "http.sock")
	ln, err := net.Listen("unix", up)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	p := StartSockProxy(t, up)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", p.Path())
	}}
	t.Cleanup(tr.CloseIdleConnections)
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func() (string, error) {
		resp, err := cl.Get("http://docker/_ping")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get(); err != nil || got != "pong /_ping" {
		t.Fatalf("through the proxy: %q %v", got, err)
	}
	p.Cut()
	t0 := time.Now()
	if _, err := get(); err == nil {
		t.Fatal("a request succeeded while cut")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("a request while cut took %s to fail; want fast", d)
	}
	p.Restore()
	if got, err := get(); err != nil || got != "pong /_ping" {
		t.Fatalf("after restore: %q %v", got, err)
	}
}

// Cleanup ends every goroutine the proxy started, even with connections
// open on both sides.
func TestSockProxyCleanupEndsGoroutines(t *testing.T) {
	up := unixUpstream(t, echoHandler)
	base := runtime.NumGoroutine()
	t.Run("proxy", func(t *testing.T) {
		p := StartSockProxy(t, up)
		for i := 0; i < 5; i++ {
			c, err := net.Dial("unix", p.Path())
			if err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(c)
			if _, err := roundTrip(c, r, "x"); err != nil {
				t.Fatal(err)
			}
			// c is left open on purpose: Cleanup must still end.
			t.Cleanup(func() { _ = c.Close() })
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after cleanup, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}
