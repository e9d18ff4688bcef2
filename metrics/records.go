package metrics

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"aima/events"
	"aima/services"
)

// listTimeout bounds the record read of one scrape.
const listTimeout = 10 * time.Second

var dockerUpDesc = prometheus.NewDesc("aima_docker_up",
	"1 while the Docker engine is reachable (the daemon's event watcher is connected), else 0.", nil, nil)

// recordCollector reports Docker's reachability and describes the
// per-service families that servicePage writes, so the registry keeps
// their names.
type recordCollector struct{ m *Metrics }

// Describe implements prometheus.Collector.
func (c *recordCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dockerUpDesc
	for _, d := range pageDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *recordCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.sources()
	if src == nil || src.Services == nil {
		return
	}
	up := 0.0
	if src.Services.DockerReachable() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(dockerUpDesc, prometheus.GaugeValue, up)
}

// sortedStatuses are the statuses in the order of their names.
var sortedStatuses = func() []services.Status {
	s := slices.Clone(services.AllStatuses)
	slices.Sort(s)
	return s
}()

var (
	busPublishedDesc = prometheus.NewDesc("aima_event_bus_published_events_total",
		"Events published on the daemon's event bus (phases, status changes, pull progress, messages).", nil, nil)
	busDeliveredDesc = prometheus.NewDesc("aima_event_bus_deliveries_total",
		"Events handed to subscribers (followers of a start, event streams, waits).", nil, nil)
	busSubscribersDesc = prometheus.NewDesc("aima_event_bus_subscribers",
		"Subscribers waiting for the next event right now (each live follower of a service, and each reader of the daemon-wide stream GET /api/events).", nil, nil)
	busServicesDesc = prometheus.NewDesc("aima_event_bus_services",
		"Services whose event log the bus holds in memory.", nil, nil)
	busLagDesc = prometheus.NewDesc("aima_event_bus_delivery_lag_events",
		"For each delivery, how many newer events of the service the subscriber had already been handed to read (0: it keeps up; large: replaying history or falling behind).", nil, nil)
	busSocketDesc = prometheus.NewDesc("aima_event_bus_publish_to_socket_seconds",
		"For each live event written to an event stream (SSE: GET /api/events, streamed operations), the time from its publication to its bytes being handed to the subscriber's connection.", nil, nil)
)

// busCollector reports the event bus's own counters.
type busCollector struct{ m *Metrics }

// Describe implements prometheus.Collector.
func (c *busCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{busPublishedDesc, busDeliveredDesc, busSubscribersDesc, busServicesDesc, busLagDesc, busSocketDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *busCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.sources()
	if src == nil || src.Bus == nil {
		return
	}
	st := src.Bus.Stats()
	ch <- prometheus.MustNewConstMetric(busPublishedDesc, prometheus.CounterValue, float64(st.Published))
	ch <- prometheus.MustNewConstMetric(busDeliveredDesc, prometheus.CounterValue, float64(st.Delivered))
	ch <- prometheus.MustNewConstMetric(busSubscribersDesc, prometheus.GaugeValue, float64(st.Waiting))
	ch <- prometheus.MustNewConstMetric(busServicesDesc, prometheus.GaugeValue, float64(st.Services))
	buckets := make(map[float64]uint64, len(events.LagBuckets))
	var cum uint64
	for i, le := range events.LagBuckets {
		cum += st.LagCounts[i]
		buckets[float64(le)] = cum
	}
	count := cum + st.LagCounts[len(events.LagBuckets)] // consistent with the buckets, read a moment apart from Delivered
	ch <- prometheus.MustNewConstHistogram(busLagDesc, count, float64(st.LagSum), buckets)
	buckets = make(map[float64]uint64, len(events.SocketWriteBuckets))
	cum = 0
	for i, le := range events.SocketWriteBuckets {
		cum += st.SocketWriteCounts[i]
		buckets[le.Seconds()] = cum
	}
	count = cum + st.SocketWriteCounts[len(events.SocketWriteBuckets)]
	ch <- prometheus.MustNewConstHistogram(busSocketDesc, count, st.SocketWriteSum.Seconds(), buckets)
}
