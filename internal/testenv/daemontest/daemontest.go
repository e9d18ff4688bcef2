// Package daemontest runs a real aima daemon in the test's own process:
// daemon.Build on a fresh data dir, its HTTP API (httpapi) served on a
// loopback httptest server, plus whatever handlers a test mounts beside it
// (MCP, JSON-RPC), all behind the daemon's access guard as in production.
//
// It is a package of its own, not part of testenv, because it imports
// aima/daemon and with it aima/runtime/docker, whose own tests use testenv.
package daemontest

import (
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"aima/daemon"
	"aima/httpapi"
	"aima/httpguard"
	"aima/internal/testenv"
	"aima/tools"
)

// Mount adds handlers to the daemon's HTTP server, built on its Env, e.g.
// srv.Handle("/rpc", jsonrpc.Handler(tools.LocalCaller{Env: env}, ...)).
type Mount func(srv *httpapi.Server, env *tools.Env)

// Options configures Start.
type Options struct {
	// ReadOnly builds a read-only daemon.
	ReadOnly bool
	// Mounts run in order after the HTTP API is built.
	Mounts []Mount
	// Token, when set, is the daemon's token (AIMA_TOKEN).
	Token string
}

// Daemon is an in-process daemon being served.
type Daemon struct {
	*daemon.Daemon
	// Server serves the HTTP API; URL is its base URL.
	Server *httptest.Server
	URL    string
	// Logs is the daemon's log (debug level), logged when the test fails.
	Logs *testenv.SyncBuffer
}

// Start builds a daemon from configPath (see testenv.SimConfig) with a
// fresh data dir and serves it. Everything is closed when the test ends:
// open streams are cut first, so a failed test's pending wait cannot hold
// the close up.
func Start(tb testing.TB, configPath string, opts Options) *Daemon {
	tb.Helper()
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := daemon.Build(daemon.Options{DataDir: filepath.Join(tb.TempDir(), "data"), ConfigPath: configPath, ReadOnly: opts.ReadOnly, Logger: logger})
	if err != nil {
		tb.Fatalf("daemon.Build: %v", err)
	}
	api := httpapi.New(d.Env, logger)
	for _, m := range opts.Mounts {
		m(api, d.Env)
	}
	h, err := d.Guard(httpguard.Secret(opts.Token), api.Handler())
	if err != nil {
		d.Close()
		tb.Fatalf("daemon.Guard: %v", err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		d.Close()
		if tb.Failed() {
			tb.Logf("in-process daemon log:\n%s", logs.String())
		}
	})
	return &Daemon{Daemon: d, Server: srv, URL: srv.URL, Logs: logs}
}
