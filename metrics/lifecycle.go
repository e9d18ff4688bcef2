package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"aima/events"
	"aima/services"
)

// Outcomes of a phase and of a whole start.
const (
	outcomeOK       = "ok"       // the phase ended in the next one; the start reached running
	outcomeFailed   = "failed"   // the start failed in it
	outcomeCanceled = "canceled" // a stop ended it
)

// Buckets of the start histograms: a phase can take milliseconds (create)
// or many minutes (a pull of a 20 GB image, a real vLLM load), so they
// reach the default start deadline of 20 minutes.
var (
	phaseBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1200}
	readyBuckets = []float64{1, 2.5, 5, 10, 30, 60, 120, 180, 300, 450, 600, 900, 1200}
)

// lifecycle turns the bus's phase and status events into the start
// histograms and the failure counter, and the gateway's request events into
// its counters. It sees each event once, as it is
// published (events.WithObserver), in each service's order.
type lifecycle struct {
	m        *Metrics
	phase    *prometheus.HistogramVec
	ready    *prometheus.HistogramVec
	failures *prometheus.CounterVec
	gateway  *gateway

	mu      sync.Mutex
	runs    map[string]*runState // the start in progress, by service ID
	engines map[string]string    // engine type by service ID (a service's engine never changes)
}

// runState is what is known of a start in progress.
type runState struct {
	run     int
	engine  string
	started time.Time // zero when the start began before this daemon
	phase   string
	phaseAt time.Time
}

func newLifecycle(m *Metrics) *lifecycle {
	return &lifecycle{
		m: m,
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aima_service_start_phase_duration_seconds",
			Help:    "How long each phase of a service start took (cleanup, pull, create, start, loading, health_check), by outcome: ok (the next phase followed), failed (the start failed in it) or canceled (a stop ended it).",
			Buckets: phaseBuckets,
		}, []string{"engine", "phase", "outcome"}),
		ready: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aima_service_ready_duration_seconds",
			Help:    "How long a service start took from the request to its end, by outcome: ok (running: the engine's health endpoint answered), failed, or canceled (stopped).",
			Buckets: readyBuckets,
		}, []string{"engine", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aima_service_start_failures_total",
			Help: "Service starts that failed, by engine, the phase they failed in and the failure kind (timeout, exited, oom, image_unavailable, ...).",
		}, []string{"engine", "phase", "kind"}),
		gateway: newGateway(),
		runs:    map[string]*runState{}, engines: map[string]string{},
	}
}

// Describe implements prometheus.Collector.
func (l *lifecycle) Describe(ch chan<- *prometheus.Desc) {
	l.phase.Describe(ch)
	l.ready.Describe(ch)
	l.failures.Describe(ch)
	l.gateway.Describe(ch)
}

// Collect implements prometheus.Collector.
func (l *lifecycle) Collect(ch chan<- prometheus.Metric) {
	l.phase.Collect(ch)
	l.ready.Collect(ch)
	l.failures.Collect(ch)
	l.gateway.Collect(ch)
}

// Observe is the bus observer (events.WithObserver).
func (m *Metrics) Observe(ev events.Event) { m.lifecycle.observe(ev) }

func (l *lifecycle) observe(ev events.Event) {
	if ev.Type == events.TypeRequest && ev.Request != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.gateway.request(ev, l.engineOf(ev.ServiceID, nil))
		return
	}
	if ev.Type != events.TypePhase && ev.Type != events.TypeStatus {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.runs[ev.ServiceID]
	if st != nil && st.run != ev.Run {
		st = nil // a new run: the old one ended unseen (e.g. its service was deleted)
		delete(l.runs, ev.ServiceID)
	}
	switch {
	case ev.Type == events.TypeStatus && ev.Status == string(services.StatusCreating):
		l.runs[ev.ServiceID] = &runState{run: ev.Run, engine: l.engineOf(ev.ServiceID, nil), started: ev.Time, phase: ev.Phase, phaseAt: ev.Time}
	case ev.Type == events.TypePhase:
		if st == nil {
			// A start this daemon resumed: its beginning is in the record.
			st = &runState{run: ev.Run}
			st.engine = l.engineOf(ev.ServiceID, func(s services.Service) {
				if s.Run == ev.Run && s.StartedAt != nil {
					st.started = *s.StartedAt
				}
			})
			l.runs[ev.ServiceID] = st
		}
		if st.phase != ev.Phase {
			l.endPhase(st, outcomeOK, ev.Time)
			st.phase, st.phaseAt = ev.Phase, ev.Time
		}
	case ev.Type == events.TypeStatus:
		l.status(ev, st)
	}
}

// status ends the start in progress, if the status ends it.
func (l *lifecycle) status(ev events.Event, st *runState) {
	var outcome string
	switch services.Status(ev.Status) {
	case services.StatusRunning:
		outcome = outcomeOK
	case services.StatusFailed:
		outcome = outcomeFailed
		if ev.Phase != "" { // a failed start (a running engine that dies has no phase)
			eng := l.engineOf(ev.ServiceID, nil)
			if st != nil {
				eng = st.engine
			}
			l.failures.WithLabelValues(eng, ev.Phase, ev.Failure).Inc()
		}
	case services.StatusStopping, services.StatusStopped:
		outcome = outcomeCanceled
	default:
		return
	}
	if st == nil {
		return // no start in progress
	}
	l.endPhase(st, outcome, ev.Time)
	if !st.started.IsZero() {
		l.ready.WithLabelValues(st.engine, outcome).Observe(ev.Time.Sub(st.started).Seconds())
	}
	delete(l.runs, ev.ServiceID)
}

func (l *lifecycle) endPhase(st *runState, outcome string, at time.Time) {
	if st.phase == "" || st.phaseAt.IsZero() {
		return
	}
	l.phase.WithLabelValues(st.engine, st.phase, outcome).Observe(at.Sub(st.phaseAt).Seconds())
	st.phase = ""
}

// engineOf returns a service's engine type, reading the record the first
// time (and passing it to also, when the record is read). Called with l.mu
// held, on the publisher's goroutine: the record was stored before the
// event was published.
func (l *lifecycle) engineOf(id string, also func(services.Service)) string {
	if e, ok := l.engines[id]; ok && also == nil {
		return e
	}
	src := l.m.sources()
	if src == nil || src.Services == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := src.Services.Get(ctx, id)
	if err != nil {
		return l.engines[id]
	}
	if also != nil {
		also(s)
	}
	l.engines[id] = s.EngineType
	return s.EngineType
}

// forgetExcept drops the engine types of services that no longer exist.
func (l *lifecycle) forgetExcept(exists func(id string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.engines {
		if !exists(id) {
			delete(l.engines, id)
		}
	}
}
