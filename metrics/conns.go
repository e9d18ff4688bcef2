package metrics

import "github.com/prometheus/client_golang/prometheus"

// ConnStats are the HTTP server's connection figures, as the listener's
// limiter counts them (the daemon binds its limiter's Stats as
// Sources.Connections).
type ConnStats struct {
	Open                           int
	RefusedTotal, RefusedPerClient int64
}

var (
	connOpenDesc = prometheus.NewDesc("aima_http_connections_open",
		"HTTP connections the daemon holds open.", nil, nil)
	connRefusedDesc = prometheus.NewDesc("aima_http_connections_refused_total",
		"HTTP connections closed on arrival because the daemon held http.max_connections (reason total) or their client address held http.max_connections_per_client (reason per_client).",
		[]string{"reason"}, nil)
)

// connCollector writes the connection figures at scrape time. It lives
// here, among aima's own series, so the reference lists them.
type connCollector struct{ m *Metrics }

// Describe implements prometheus.Collector.
func (c *connCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connOpenDesc
	ch <- connRefusedDesc
}

// Collect implements prometheus.Collector.
func (c *connCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.sources()
	if src == nil || src.Connections == nil {
		return
	}
	s := src.Connections()
	ch <- prometheus.MustNewConstMetric(connOpenDesc, prometheus.GaugeValue, float64(s.Open))
	ch <- prometheus.MustNewConstMetric(connRefusedDesc, prometheus.CounterValue, float64(s.RefusedTotal), "total")
	ch <- prometheus.MustNewConstMetric(connRefusedDesc, prometheus.CounterValue, float64(s.RefusedPerClient), "per_client")
}
