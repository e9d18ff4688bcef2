// Package daemontest runs a real aima daemon in the test's own process: the
// daemon package's one constructor (daemon.New) and start-up path
// (Daemon.Serve: start-up reconcile, runtime events watcher, liveness loop,
// every front-end: HTTP API, /mcp, /rpc, all behind the access guard as in
// production) on a fresh data dir, served on a loopback port. A test may
// inject the runtime (runtime/fakeruntime) to run it without Docker.
//
// It is a package of its own, not part of testenv, because it imports
// aima/daemon and with it aima/runtime/docker, whose own tests use testenv.
package daemontest

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"aima/daemon"
	"aima/httpguard"
	"aima/internal/testenv"
	"aima/runtime"
)

// Options configures Start.
type Options struct {
	// ReadOnly builds a read-only daemon.
	ReadOnly bool
	// Token, when set, is the daemon's bearer token (AIMA_TOKEN).
	Token string
	// Runtime replaces the Docker runtime (e.g. a fakeruntime.Runtime,
	// which the test closes).
	Runtime runtime.Runtime
	// DataDir is the state directory; empty means a fresh one. A second
	// daemon on the first one's DataDir (after its Stop) is a restart.
	DataDir string
}

// Daemon is an in-process daemon being served.
type Daemon struct {
	*daemon.Daemon
	// URL is the base URL it serves, e.g. http://127.0.0.1:PORT.
	URL string
	// Logs is the daemon's log (debug level), logged when the test fails.
	Logs *testenv.SyncBuffer
	// DataDir is its state directory.
	DataDir string

	stop func()
}

// Stop shuts the daemon down now, as SIGTERM does, and closes it (the
// test's cleanup does it otherwise). Containers keep running.
func (d *Daemon) Stop() { d.stop() }

// Start builds a daemon from configPath (see testenv.SimConfig) with a
// fresh data dir and serves it until the test ends. At the end it shuts
// down the way `aima start` does on SIGTERM (requests in flight are told
// the daemon is shutting down) and is closed.
func Start(tb testing.TB, configPath string, opts Options) *Daemon {
	tb.Helper()
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = filepath.Join(tb.TempDir(), "data")
	}
	d, err := daemon.New(daemon.Options{
		Addr: ln.Addr().String(), DataDir: dataDir, ConfigPath: configPath,
		ReadOnly: opts.ReadOnly, Token: httpguard.Secret(opts.Token), Logger: logger, Runtime: opts.Runtime,
	})
	if err != nil {
		ln.Close()
		tb.Fatalf("daemon.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				tb.Errorf("serve: %v", err)
			}
			d.Close()
		})
	}
	tb.Cleanup(func() {
		stop()
		if tb.Failed() {
			tb.Logf("in-process daemon log:\n%s", logs.String())
		}
	})
	return &Daemon{Daemon: d, URL: "http://" + ln.Addr().String(), Logs: logs, DataDir: dataDir, stop: stop}
}
