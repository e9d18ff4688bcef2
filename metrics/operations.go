package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"aima/errs"
	"aima/tools"
)

type frontendKey struct{}

// Tag marks the requests handled by h as coming through front-end name
// (one of tools.Frontends). On the HTTP API (name http) a known
// tools.FrontendHeader wins: the CLI and the stdio relays set it.
func Tag(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := name
		if name == tools.FrontendHTTP {
			switch hdr := r.Header.Get(tools.FrontendHeader); hdr {
			case tools.FrontendCLI, tools.FrontendMCP, tools.FrontendJSONRPC:
				f = hdr
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), frontendKey{}, f)))
	})
}

// FrontendOf returns the front-end a request's context was tagged with
// (http when untagged).
func FrontendOf(ctx context.Context) string {
	if f, ok := ctx.Value(frontendKey{}).(string); ok {
		return f
	}
	return tools.FrontendHTTP
}

// operations counts every operation call and its duration, by front-end
// and outcome.
type operations struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newOperations() *operations {
	o := &operations{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aima_operations_total",
			Help: "Operation calls (service_start, model_list, ...), by the front-end they came through (http, cli, mcp, jsonrpc) and the outcome: ok or the error kind (invalid_argument, not_found, conflict, unavailable, deadline_exceeded, canceled, internal).",
		}, []string{"operation", "frontend", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aima_operation_duration_seconds",
			Help:    "How long operation calls took, by front-end (a call with wait or follow lasts as long as it waits).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1200},
		}, []string{"operation", "frontend"}),
	}
	// One table from the one registry: every operation on every front-end
	// is there from the start, at zero.
	for _, op := range tools.Registry() {
		for _, f := range tools.Frontends {
			o.total.WithLabelValues(op.Name(), f, "ok")
		}
	}
	return o
}

// Describe implements prometheus.Collector.
func (o *operations) Describe(ch chan<- *prometheus.Desc) {
	o.total.Describe(ch)
	o.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (o *operations) Collect(ch chan<- prometheus.Metric) {
	o.total.Collect(ch)
	o.duration.Collect(ch)
}

// Caller returns a tools.Caller that counts every call through next. The
// daemon hands this one caller to every front-end, so each operation is
// counted once, in one place, whichever front-end served it.
func (m *Metrics) Caller(next tools.Caller) tools.Caller {
	return &countingCaller{next: next, ops: m.ops}
}

type countingCaller struct {
	next tools.Caller
	ops  *operations
}

// Call implements tools.Caller.
func (c *countingCaller) Call(ctx context.Context, op tools.Op, raw json.RawMessage, rep tools.Reporter) (any, error) {
	start := time.Now()
	out, err := c.next.Call(ctx, op, raw, rep)
	f := FrontendOf(ctx)
	kind := "ok"
	if err != nil {
		kind = string(errs.KindOf(err))
	}
	c.ops.total.WithLabelValues(op.Name(), f, kind).Inc()
	c.ops.duration.WithLabelValues(op.Name(), f).Observe(time.Since(start).Seconds())
	return out, err
}
