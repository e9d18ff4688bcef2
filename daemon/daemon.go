// Package daemon wires aima's pieces into the long-running process that
// `aima start` runs: config, state store, Docker runtime, event bus,
// service manager, and the HTTP front-end (with MCP and JSON-RPC mounted).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"aima/config"
	"aima/engines"
	"aima/errs"
	"aima/events"
	"aima/gpu"
	"aima/httpapi"
	"aima/models"
	"aima/runtime/docker"
	"aima/services"
	"aima/state"
	"aima/tools"
)

// Version is aima's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Options are the daemon's command-line settings.
type Options struct {
	Addr       string
	DataDir    string
	ConfigPath string
	ReadOnly   bool
	DockerHost string // empty: from the environment
	Logger     *slog.Logger
	// Ready, if set, receives the bound address once the daemon serves.
	Ready chan<- string
	// Token, when set, is required as a bearer token on every route but
	// GET /health. It must be set to listen beyond loopback.
	Token string
	// Mount adds extra handlers (MCP, JSON-RPC) to the HTTP server; it
	// gets the listen address and token so it can apply its own checks.
	Mount func(srv *httpapi.Server, env *tools.Env, addr, token string)
}

// Daemon is a built, not yet serving, aima daemon.
type Daemon struct {
	Env     *tools.Env
	Config  config.Config
	store   state.Store
	rt      *docker.Docker
	manager *services.Manager
	log     *slog.Logger
}

// Build opens everything the daemon needs. Close releases it.
func Build(opts Options) (*Daemon, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	cfg, err := config.Load(opts.ConfigPath, opts.ConfigPath != "")
	if err != nil {
		return nil, err
	}
	catalog, err := engines.NewCatalog(cfg.Engines)
	if err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		opts.DataDir = config.DefaultDataDir()
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, errs.Invalid("data_dir", "data dir %s: %v", opts.DataDir, err)
	}
	store, err := state.Open(cfg.Store, opts.DataDir)
	if err != nil {
		return nil, err
	}
	var dopts []docker.Option
	if opts.DockerHost != "" {
		dopts = append(dopts, docker.WithHost(opts.DockerHost))
	}
	rt, err := docker.New(dopts...)
	if err != nil {
		store.Close()
		return nil, errs.Wrap(errs.Unavailable, err, "docker client")
	}
	bus := events.NewBus(events.WithJournal(services.NewJournal(store)), events.WithErrorHandler(func(err error) {
		log.Warn("event journal", "err", err)
	}))
	reg := models.NewRegistry(store)
	lo, hi, _ := cfg.Ports()
	attach, _ := gpu.ParseAttach(cfg.GPUAttach)
	policy, _ := gpu.ParsePolicy(cfg.GPUPolicy)
	mgr := services.NewManager(store, rt, bus, catalog, reg, services.Options{
		BindHost: cfg.BindHost, PortLow: lo, PortHigh: hi,
		StartTimeout: time.Duration(cfg.StartTimeout), StopTimeout: time.Duration(cfg.StopTimeout),
		HealthInterval: time.Duration(cfg.HealthInterval), Logger: log,
		LivenessInterval: time.Duration(cfg.LivenessInterval), UnhealthyGrace: time.Duration(cfg.UnhealthyGrace),
		RestartBackoff: time.Duration(cfg.RestartBackoff), AllowPrivilegedArgs: cfg.AllowPrivilegedArgs,
		GPUs: gpuInventory(cfg.NvidiaSMI), GPUAttach: attach, GPUPolicy: policy,
	})
	env := &tools.Env{Services: mgr, Models: reg, Catalog: catalog, Runtime: rt, Version: Version, ReadOnly: opts.ReadOnly}
	return &Daemon{Env: env, Config: cfg, store: store, rt: rt, manager: mgr, log: log}, nil
}

// gpuInventory is the GPU inventory the config asks for: nvidia-smi on
// PATH or at the configured path, or none ("off").
func gpuInventory(nvidiaSMI string) *gpu.Inventory {
	if nvidiaSMI == "off" {
		return gpu.NewInventory(nil)
	}
	return gpu.NewInventory(&gpu.NvidiaSMI{Path: nvidiaSMI})
}

// logGPUs reads the GPU inventory once at start-up and logs what it found.
func (d *Daemon) logGPUs(ctx context.Context) {
	snap, err := d.Env.Services.GPUList(ctx)
	switch {
	case err != nil:
		d.log.Warn("GPU inventory", "err", err)
	case len(snap.Devices) == 0:
		d.log.Info("GPU inventory", "gpus", 0, "note", snap.Note)
	default:
		d.log.Info("GPU inventory", "gpus", len(snap.Devices), "driver", snap.Devices[0].DriverVersion, "name", snap.Devices[0].Name)
	}
}

// Close stops background work and releases the store and the Docker client.
// Engine containers are left running: they belong to the operator.
func (d *Daemon) Close() {
	d.manager.Close()
	_ = d.rt.Close()
	_ = d.store.Close()
}

// errShuttingDown ends requests in flight when the daemon stops.
var errShuttingDown = errs.New(errs.Unavailable, "the aima daemon is shutting down; starts in progress continue in Docker and the next daemon resumes them")

// Run builds the daemon and serves until ctx ends, then shuts down
// gracefully: no new requests, in-flight ones get a bounded grace, state is
// persisted, containers keep running.
func Run(ctx context.Context, opts Options) error {
	if opts.Token == "" && !httpapi.IsLoopback(opts.Addr) {
		return errs.Invalid("addr", "refusing to listen on %s, beyond loopback, without a token: the API starts containers; set AIMA_TOKEN (clients send it as a bearer token) or listen on 127.0.0.1", opts.Addr)
	}
	if opts.DataDir == "" {
		opts.DataDir = config.DefaultDataDir()
	}
	d, err := Build(opts)
	if err != nil {
		return err
	}
	defer d.Close()
	d.logGPUs(ctx)
	if err := d.manager.Run(); err != nil {
		d.log.Warn("reconcile at start-up", "err", err)
	}
	d.reportStore(ctx)
	srv := httpapi.New(d.Env, d.log)
	if opts.Mount != nil {
		opts.Mount(srv, d.Env, opts.Addr, opts.Token)
	}
	handler := srv.Handler()
	if opts.Token != "" {
		handler = httpapi.RequireToken(opts.Token, handler)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "listen on %s", opts.Addr)
	}
	// Requests run under their own context, cancelled with a reason at
	// shutdown, so a client following a start learns why its stream ends.
	reqCtx, cancelRequests := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelRequests(nil)
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return reqCtx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	d.log.Info("aima daemon serving", "addr", ln.Addr().String(), "data_dir", opts.DataDir, "version", Version)
	if opts.Ready != nil {
		opts.Ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	d.log.Info("shutting down")
	cancelRequests(errShuttingDown)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	return nil
}
