package metrics

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"aima/events"
	"aima/gpu"
	"aima/services"
)

// listTimeout bounds the record read of one scrape.
const listTimeout = 10 * time.Second

var (
	statusDesc = prometheus.NewDesc("aima_service_status",
		"The service's status as a state set: 1 for its current status, 0 for the others (created, creating, running, unhealthy, sleeping, stopping, stopped, failed).",
		[]string{"service", "engine", "status"}, nil)
	restartsDesc = prometheus.NewDesc("aima_service_restarts_total",
		"Automatic restarts of the service by its on-failure restart policy.",
		[]string{"service", "engine"}, nil)
	dockerUpDesc = prometheus.NewDesc("aima_docker_up",
		"1 while the Docker engine is reachable (the daemon's event watcher is connected), else 0.", nil, nil)
	recordsUpDesc = prometheus.NewDesc("aima_service_records_up",
		"1 when the service records could be read for this scrape, else 0 (the service series are then absent).", nil, nil)
)

// recordCollector reads the service records at scrape time: the records are
// the truth, so the status and restart series are right after a daemon
// restart too. A service's series are made again only when its status or
// restart count changed (const metrics are immutable, so they are reused).
type recordCollector struct {
	m *Metrics

	mu     sync.Mutex
	series map[string]serviceSeries // by service ID
}

type serviceSeries struct {
	engine   string
	status   services.Status
	restarts int
	lease    *gpu.Lease
	metrics  []prometheus.Metric
}

// Describe implements prometheus.Collector.
func (c *recordCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{statusDesc, restartsDesc, dockerUpDesc, recordsUpDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *recordCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.sources()
	if src == nil || src.Services == nil {
		return
	}
	mgr := src.Services
	up := 0.0
	if mgr.DockerReachable() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(dockerUpDesc, prometheus.GaugeValue, up)
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	all, err := mgr.ListShared(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(recordsUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(recordsUpDesc, prometheus.GaugeValue, 1)
	// The registry sorts each family's series by their labels in name
	// order (engine, service, status); handing them over in that order
	// makes its sort a linear pass, which matters with thousands of them.
	order := make([]int, len(all))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := all[order[i]], all[order[j]]
		if a.EngineType != b.EngineType {
			return a.EngineType < b.EngineType
		}
		return a.ID < b.ID
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[string]serviceSeries, len(all))
	ids := make(map[string]bool, len(all))
	for _, i := range order {
		s := all[i]
		ids[s.ID] = true
		ss, ok := c.series[s.ID]
		if !ok || ss.engine != s.EngineType || ss.status != s.Status || ss.restarts != s.RestartCount || ss.lease != s.GPULease {
			ss = serviceSeries{engine: s.EngineType, status: s.Status, restarts: s.RestartCount, lease: s.GPULease}
			for _, st := range sortedStatuses {
				v := 0.0
				if s.Status == st {
					v = 1
				}
				ss.metrics = append(ss.metrics, prometheus.MustNewConstMetric(statusDesc, prometheus.GaugeValue, v, s.ID, s.EngineType, string(st)))
			}
			ss.metrics = append(ss.metrics, prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(s.RestartCount), s.ID, s.EngineType))
			ss.metrics = append(ss.metrics, leaseMetrics(s)...)
		}
		next[s.ID] = ss
		for _, m := range ss.metrics {
			ch <- m
		}
	}
	c.series = next
	c.m.lifecycle.forgetExcept(ids)
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
		"Subscribers waiting for the next event right now (each live follower of a service).", nil, nil)
	busServicesDesc = prometheus.NewDesc("aima_event_bus_services",
		"Services whose event log the bus holds in memory.", nil, nil)
	busLagDesc = prometheus.NewDesc("aima_event_bus_delivery_lag_events",
		"For each delivery, how many newer events of the service the subscriber had already been handed to read (0: it keeps up; large: replaying history or falling behind).", nil, nil)
)

// busCollector reports the event bus's own counters.
type busCollector struct{ m *Metrics }

// Describe implements prometheus.Collector.
func (c *busCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{busPublishedDesc, busDeliveredDesc, busSubscribersDesc, busServicesDesc, busLagDesc} {
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
}
