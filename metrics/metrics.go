// Package metrics is aima's Prometheus front-end. It serves
//
//   - /metrics: the daemon's own series (aima_*: build info, each service's
//     status as a state set, start-phase and time-to-ready histograms,
//     restarts, start failures by kind, Docker reachability, every
//     operation by front-end, the event bus), plus Go and process series;
//   - /metrics/engines: every running engine's own metrics (vllm:*,
//     sglang:*, llamacpp:*), scraped concurrently with a short timeout each
//     and labelled aima_service and aima_engine, with aima_engine_scrape_up;
//   - /metrics/targets: the engines as Prometheus HTTP service discovery,
//     for those who scrape the engines directly.
//
// Figures come from the records (read at scrape time; each service's
// series are kept as text until its record changes) and from the event
// bus (an observer that sees every phase and status event as it is
// published), never from log text. Operation
// counts come from one tools.Caller wrapper that every front-end's calls
// pass through.
package metrics

import (
	"net/http"
	"runtime"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"aima/enginemetrics"
	"aima/events"
	"aima/gpu"
	"aima/services"
)

// Paths the daemon serves.
const (
	Path        = "/metrics"
	EnginesPath = "/metrics/engines"
	TargetsPath = "/metrics/targets"
)

// Sources are what the collectors read at scrape time.
type Sources struct {
	Services *services.Manager
	Bus      *events.Bus
	Engines  *enginemetrics.Scraper
	GPUs     *gpu.Inventory // nil: no GPU series
	// Connections reads the HTTP server's connection figures (nil: none).
	Connections func() ConnStats
}

// Metrics holds aima's Prometheus registry and the instruments fed by
// events and calls. Make it with New before the event bus (the bus takes
// Observe as its observer), then Bind the sources.
type Metrics struct {
	reg     *prometheus.Registry
	version string
	src     atomic.Pointer[Sources]

	lifecycle *lifecycle
	ops       *operations
	page      *servicePage
	// own are the collectors of aima's own series (aima_*), as registered.
	own []prometheus.Collector
}

// New builds the registry: the instruments, the collectors that read the
// sources once they are bound, and Go and process series.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), version: version}
	m.lifecycle = newLifecycle(m)
	m.ops = newOperations()
	m.page = &servicePage{m: m}
	m.own = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "aima_build_info", Help: "aima's build: always 1, with the version and Go version as labels.",
			ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		m.lifecycle, m.ops, &recordCollector{m: m}, &busCollector{m: m}, &gpuCollector{m: m}, &gpuCordonCollector{m: m}, &connCollector{m: m},
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(m.own...)
	return m
}

// Bind gives the collectors their sources. Until it is called they report
// nothing about services.
func (m *Metrics) Bind(s Sources) { m.src.Store(&s) }

func (m *Metrics) sources() *Sources { return m.src.Load() }

// Registry is the registry behind /metrics, where collectors of other
// parts of the daemon can register.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Mount registers the three routes with handle (the daemon's root router).
func (m *Metrics) Mount(handle func(pattern string, h http.Handler)) {
	handle("GET "+Path, m.Handler())
	handle("GET "+EnginesPath, gzipped(http.HandlerFunc(m.serveEngines)))
	handle("GET "+TargetsPath, http.HandlerFunc(m.serveTargets))
}
