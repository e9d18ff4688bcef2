package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"aima/events"
)

// gateway counts the inference requests the OpenAI-compatible gateway
// (/v1) forwarded, from the request events it publishes on the bus when
// each request ends.
type gateway struct {
	requests *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ttft     *prometheus.HistogramVec
}

// Latency buckets of a request: a cached short reply takes milliseconds, a
// long generation or a cold start (included in the time to first token)
// minutes.
var gatewayBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200}

func newGateway() *gateway {
	return &gateway{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aima_gateway_requests_total",
			Help: "Inference requests through the gateway (/v1), by service, engine, endpoint and the HTTP status the client got.",
		}, []string{"service", "engine", "endpoint", "code"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aima_gateway_tokens_total",
			Help: "Tokens of the gateway's requests, by service and direction: in (prompt) or out (generated).",
		}, []string{"service", "engine", "direction"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aima_gateway_request_duration_seconds",
			Help:    "How long the gateway's requests took, from arrival to the last byte (an on-demand start or a wake included).",
			Buckets: gatewayBuckets,
		}, []string{"endpoint"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aima_gateway_time_to_first_token_seconds",
			Help:    "Time from a gateway request's arrival to its first token (an on-demand start or a wake included).",
			Buckets: gatewayBuckets,
		}, []string{"endpoint"}),
	}
}

// Describe implements prometheus.Collector.
func (g *gateway) Describe(ch chan<- *prometheus.Desc) {
	g.requests.Describe(ch)
	g.tokens.Describe(ch)
	g.duration.Describe(ch)
	g.ttft.Describe(ch)
}

// Collect implements prometheus.Collector.
func (g *gateway) Collect(ch chan<- prometheus.Metric) {
	g.requests.Collect(ch)
	g.tokens.Collect(ch)
	g.duration.Collect(ch)
	g.ttft.Collect(ch)
}

// request records one request event.
func (g *gateway) request(ev events.Event, engine string) {
	r := ev.Request
	g.requests.WithLabelValues(ev.ServiceID, engine, r.Endpoint, strconv.Itoa(r.Code)).Inc()
	// A counter panics on a negative value. The gateway keeps an engine's
	// impossible counts out of the record, but the record is data from
	// another package: count only what can be counted.
	g.tokens.WithLabelValues(ev.ServiceID, engine, "in").Add(float64(max(r.TokensIn, 0)))
	g.tokens.WithLabelValues(ev.ServiceID, engine, "out").Add(float64(max(r.TokensOut, 0)))
	g.duration.WithLabelValues(r.Endpoint).Observe(r.DurationMs / 1000)
	if r.TTFTMs > 0 {
		g.ttft.WithLabelValues(r.Endpoint).Observe(r.TTFTMs / 1000)
	}
}
