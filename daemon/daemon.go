// Package daemon is aima's one composition root: it builds the long-running
// process that `aima start` runs (config, state store, container runtime,
// event bus, service manager, serving layer, inference gateway) and puts
// every front-end on its one HTTP server (routes.go: the HTTP API, MCP at
// /mcp, JSON-RPC at /rpc, the OpenAI-compatible gateway at /v1). The same
// constructor and start-up path serve `aima start` (Run) and the in-process
// test daemon (internal/testenv/daemontest), which may inject a runtime.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"aima/config"
	"aima/enginemetrics"
	"aima/errs"
	"aima/events"
	"aima/gpu"
	"aima/httpguard"
	"aima/inference"
	"aima/metrics"
	"aima/models"
	"aima/runtime"
	"aima/services"
	"aima/serving"
	"aima/state"
	"aima/tools"
)

// Version is aima's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Options are the daemon's settings.
type Options struct {
	// Addr is the listen address; the front-ends' exposure checks use it.
	Addr       string
	DataDir    string // default ~/.aima
	ConfigPath string // YAML config; empty: the defaults
	ReadOnly   bool
	DockerHost string // empty: from the environment
	// Token, when set, is required on every route but GET /health (as a
	// bearer token or the login cookie). It must be set to listen beyond
	// loopback.
	Token  httpguard.Secret
	Logger *slog.Logger
	// Runtime, when set, is used instead of a Docker client (tests pass
	// runtime/fakeruntime); the daemon does not close it.
	Runtime runtime.Runtime
	// Store, when set, is used instead of opening the configured one (a
	// replica opens its store before it is elected: cluster.go); the
	// daemon does not close it.
	Store state.Store
	// Fence, when set, is asked before every runtime write and fails it
	// when this daemon may no longer write (it lost its lease).
	Fence func(ctx context.Context) error
}

// Daemon is a built daemon: everything wired, nothing running until Serve.
type Daemon struct {
	// Domain is what operations run against.
	Domain *tools.Domain
	Config config.Config

	opts       Options
	store      state.Store
	closeStore func() error
	journal    *events.StoreJournal
	closeRT    func() error
	manager    *services.Manager
	serving    *serving.Scheduler
	metrics    *metrics.Metrics
	log        *slog.Logger
	handler    http.Handler
	// patterns are the routes handler serves (see Routes).
	patterns []string
	// conns bounds the connections Serve accepts (counted on /metrics).
	conns *httpguard.ConnLimiter
	// bg is the daemon's lifetime for front-end background work (MCP
	// resource subscriptions); Close ends it.
	bg       context.Context
	cancelBG context.CancelFunc
}

// New builds the daemon: it opens the store and the runtime client, wires
// the manager and mounts every front-end. It serves nothing and reconciles
// nothing (Serve does), but the serving layer's idle-release loop runs from here
// (it acts only on services a request has used), and the journal's writer
// runs whenever events wait to be written. Close ends both and releases
// what New opened.
func New(opts Options) (*Daemon, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	cfg, catalog, err := LoadConfig(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		opts.DataDir = config.DefaultDataDir()
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, errs.Invalid("data_dir", "data dir %s: %v", opts.DataDir, err)
	}
	store, closeStore := opts.Store, func() error { return nil }
	if store == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		store, err = OpenStore(ctx, cfg, opts.DataDir, "aima/"+Version)
		cancel()
		if err != nil {
			return nil, err
		}
		closeStore = store.Close
	}
	rt, closeRT := opts.Runtime, func() error { return nil }
	if rt == nil {
		if rt, closeRT, err = newRuntime(cfg, opts, store, log); err != nil {
			_ = closeStore()
			return nil, err
		}
	}
	gpus := gpuInventory(cfg.NvidiaSMI)
	if cfg.Runtime == config.RuntimeKubernetes {
		// The daemon's host is not where engines run: its nvidia-smi says
		// nothing about the cluster's GPUs. The runtime lists the nodes'
		// GPUs, and placement picks the node each Pod is pinned to.
		gpus = gpu.NewInventory(nil)
		if nodes, ok := rt.(runtime.GPUNodeLister); ok {
			gpus = gpu.NewInventory(gpu.ClusterSource{Nodes: nodes})
		}
	}
	// The node lister above is the runtime's own, taken before the fence
	// wraps it: the fence guards writes, and its wrapper does not carry the
	// lister (through it, placement on a cluster was silently off).
	if opts.Fence != nil {
		rt, store = fenced(rt, store, opts.Fence)
	}
	// The metrics observe every event as it is published, so they exist
	// before the bus; their sources are bound once the manager exists.
	mx := metrics.New(Version)
	journalErr := func(err error) { log.Warn("event journal", "err", err) }
	journal := events.NewJournal(store, journalErr)
	busErr := func(err error) { log.Warn("event bus", "err", err) } // the journal's errors and an observer's panic
	bus := events.NewBus(events.WithJournal(journal), events.WithErrorHandler(busErr), events.WithObserver(mx.Observe))
	journal.AwaitFanout(bus.AwaitFanout)
	reg := models.NewRegistry(store)
	mopts := managerOptions(cfg)
	mopts.Logger, mopts.Journal, mopts.GPUs = log, journal, gpus
	mgr := services.NewManager(store, rt, bus, catalog, reg, mopts)
	// The serving layer attaches itself to the manager: the lifecycle
	// tells it every status change and asks it the request facts it needs.
	sched := serving.New(mgr, serving.Options{Logger: log})
	gw := inference.New(mgr, sched, gatewayOptions(cfg, opts.ReadOnly)) // read-only: /v1 serves what runs; it starts nothing
	scraper := enginemetrics.NewScraper(0)
	dom := &tools.Domain{Services: mgr, Inference: gw, Models: reg, Catalog: catalog, Runtime: rt, Version: Version, DataDir: opts.DataDir, ReadOnly: opts.ReadOnly,
		EngineMetrics: scraper}
	d := &Daemon{Domain: dom, Config: cfg, opts: opts, store: store, closeStore: closeStore, journal: journal, closeRT: closeRT, manager: mgr, serving: sched, log: log, metrics: mx}
	d.conns = httpguard.NewConnLimiter(httpguard.ConnLimits{Max: cfg.HTTP.MaxConnections, PerClient: cfg.HTTP.MaxConnectionsPerClient}, log)
	mx.Bind(metrics.Sources{Services: mgr, Bus: bus, Engines: scraper, GPUs: gpus, Connections: func() metrics.ConnStats {
		s := d.conns.Stats()
		return metrics.ConnStats{Open: s.Open, RefusedTotal: s.RefusedTotal, RefusedPerClient: s.RefusedPerClient}
	}})
	d.bg, d.cancelBG = context.WithCancel(context.Background())
	if d.handler, err = d.routes(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
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
	snap, err := d.Domain.Services.GPUList(ctx)
	switch {
	case err != nil:
		d.log.Warn("GPU inventory", "err", err)
	case len(snap.Devices) == 0:
		d.log.Info("GPU inventory", "gpus", 0, "note", snap.Note)
	default:
		d.log.Info("GPU inventory", "gpus", len(snap.Devices), "driver", snap.Devices[0].DriverVersion, "name", snap.Devices[0].Name)
	}
}

// Handler is the daemon's whole HTTP surface, as Serve serves it.
func (d *Daemon) Handler() http.Handler { return d.handler }

// Close stops background work and releases the store and the runtime
// client. Engine containers are left running: they belong to the operator.
func (d *Daemon) Close() {
	d.cancelBG()
	d.serving.Close()
	d.manager.Close()
	d.Domain.Inference.Close()
	d.Domain.EngineMetrics.Close()
	_ = d.closeRT()
	d.journal.Close() // what it still queues, before the store closes
	_ = d.closeStore()
}

// errShuttingDown ends requests in flight when the daemon stops.
var errShuttingDown = errs.New(errs.Unavailable, "the aima daemon is shutting down; starts in progress continue in Docker and the next daemon resumes them")

// Serve is the daemon's start-up and serving path, the same for `aima
// start` and for tests: it reconciles the records with the runtime and
// starts the manager's watchers (runtime events, liveness), serves ln until
// ctx ends, then shuts down gracefully: no new requests, in-flight ones are
// told why they end and get a bounded grace; containers keep running. Call
// it once.
//
// What a client can hold is bounded (the config's http section): its
// connections, in all and per client address (ConnLimiter); a request's
// headers (10 s) and, with its body, the whole request (body_timeout:
// ReadTimeout, whose read deadline net/http lifts once the body has been
// read, when it starts watching for the client going away); a keep-alive
// connection without a request (idle_timeout). Answers are not bounded in
// time (no WriteTimeout): event streams, log follows, MCP streams and
// streamed /v1 answers last as long as they have something to say and the
// client listens.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	d.logGPUs(ctx)
	if w := d.manager.PortRangeWarning(); w != "" {
		d.log.Warn(w)
	}
	if err := d.manager.Run(); err != nil {
		d.log.Warn("reconcile at start-up", "err", err)
	}
	d.serving.ArmRunning(ctx)
	d.reportStore(ctx)
	// Start-up read every record (the store scan, decoding, the record
	// cache's fill): hand that garbage back to the system now instead of
	// keeping the heap it grew to (tens of MiB with 10,000 services).
	debug.FreeOSMemory()
	// Requests run under their own context, cancelled with a reason at
	// shutdown, so a client following a start learns why its stream ends.
	reqCtx, cancelRequests := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelRequests(nil)
	hs := &http.Server{Handler: d.handler, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Duration(d.Config.HTTP.BodyTimeout), IdleTimeout: time.Duration(d.Config.HTTP.IdleTimeout),
		BaseContext: func(net.Listener) context.Context { return reqCtx },
		ErrorLog:    slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(d.conns.Listen(ln)) }()
	d.log.Info("aima daemon serving", "addr", ln.Addr().String(), "data_dir", d.opts.DataDir, "version", Version)
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
	<-errc
	return nil
}

// Run builds the daemon, listens on opts.Addr and serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Token == "" && !httpguard.IsLoopback(opts.Addr) {
		return errs.Invalid("addr", "refusing to listen on %s, beyond loopback, without a token: the API starts containers; set AIMA_TOKEN or AIMA_TOKEN_FILE (clients send it as a bearer token) or listen on 127.0.0.1", opts.Addr)
	}
	cfg, _, err := LoadConfig(opts.ConfigPath)
	if err != nil {
		return err
	}
	defer memoryPolicy(ctx, opts.Logger)()
	if cfg.Cluster.LeaderElection.Enabled {
		log := opts.Logger
		if log == nil {
			log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		return runReplica(ctx, opts, cfg, log)
	}
	d, err := New(opts)
	if err != nil {
		return err
	}
	defer d.Close()
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "listen on %s", opts.Addr)
	}
	return d.Serve(ctx, ln)
}
