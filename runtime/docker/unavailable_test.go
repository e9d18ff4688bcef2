package docker

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"aima/errs"
	"aima/runtime"
)

// TestUnavailable needs no engine: every call against an absent socket or a
// peer that hangs up must fail fast with errs.Unavailable.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A socket whose server closes every connection at once (EOF).
	eof, err := net.Listen("unix", filepath.Join(dir, "eof.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eof.Close() }) // not defer: the parallel subtests run after this function returns
	go func() {
		for {
			c, err := eof.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	hosts := map[string]string{
		"no socket":         "unix://" + filepath.Join(dir, "missing.sock"),
		"connection closed": "unix://" + eof.Addr().String(),
		"refused":           "tcp://127.0.0.1:1",
	}
	for name, host := range hosts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := New(WithHost(host))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			start := time.Now()
			wantKind(t, d.Ping(t.Context()), errs.Unavailable, "docker engine unavailable")
			_, err = d.InspectContainer(t.Context(), "x")
			wantKind(t, err, errs.Unavailable, "docker engine unavailable")
			_, err = d.ImageExists(t.Context(), "x")
			wantKind(t, err, errs.Unavailable)
			wantKind(t, d.PullImage(t.Context(), "x", runtime.PullOptions{}), errs.Unavailable)
			_, err = d.CreateContainer(t.Context(), runtime.ContainerSpec{Image: "x"})
			wantKind(t, err, errs.Unavailable)
			wantKind(t, (<-d.WaitExit(t.Context(), "x")).Err, errs.Unavailable)
			wantKind(t, d.Logs(t.Context(), "x", runtime.LogOptions{}, func(runtime.LogLine) error { return nil }), errs.Unavailable)
			_, errc := d.Events(t.Context(), runtime.EventOptions{Labels: nil})
			wantKind(t, <-errc, errs.Unavailable)
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v, want fast failures", el)
			}
			t.Logf("%s: %v", name, d.Ping(t.Context()))
		})
	}
}

// TestHungEngine: an engine that accepts but never answers must not hang the
// caller past its ctx; the ctx error is kept.
func TestHungEngine(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "hung.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // hold it open, say nothing
			mu.Unlock()
		}
	}()
	d, err := New(WithHost("unix://" + l.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = d.Ping(ctx)
	wantKind(t, err, errs.DeadlineExceeded)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Ping returned after %v", el)
	}
}
