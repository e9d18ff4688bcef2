package docker

import (
	"context"
	"sync"
	"testing"
	"time"

	"aima/errs"
	"aima/internal/testenv"
	"aima/runtime"
)

// TestCallsAreBounded: a burst of API calls far beyond the cap (as a
// JSON-RPC batch of health checks, or many clients at once, cause) waits
// for slots: every call succeeds and the engine never sees more
// connections than the cap allows (plus the idle ones kept for reuse).
func TestCallsAreBounded(t *testing.T) {
	testenv.RequireDocker(t)
	proxy := testenv.StartSockProxy(t, testenv.DockerSocket(t))
	const limit, callers = 4, 300
	d, err := New(WithHost(proxy.Host()), WithMaxCalls(limit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				err = d.Ping(ctx)
			} else {
				_, err = d.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{testLabel: "none"}})
			}
			if err != nil {
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("call failed: %v", err)
	}
	// The moby client keeps up to two idle connections besides those in
	// use, and a connection it closed counts at the proxy until the proxy
	// sees its end, so a new one may overlap it: under load the peak was
	// seen at limit+3. Without the bound it would approach the 300 callers.
	if peak := proxy.PeakLive(); peak > 2*limit {
		t.Errorf("%d connections to the engine at once, want at most %d (%d calls, two idle, closes the proxy has not seen yet)", peak, 2*limit, limit)
	}
}

// TestSlotWaitEndsWithCtx: a call waiting for a slot gives up when its ctx
// ends, with the ctx's error.
func TestSlotWaitEndsWithCtx(t *testing.T) {
	d, err := New(WithHost("unix:///nonexistent.sock"), WithMaxCalls(1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	release, err := d.slot(t.Context(), "first")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := d.Ping(ctx); !errs.Is(err, errs.DeadlineExceeded) {
		t.Fatalf("Ping while every slot is taken: %v, want deadline_exceeded", err)
	}
}
