package metrics

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"aima/gpu"
	"aima/services"
)

// gpuStale is how old the inventory's last read may be before a scrape
// asks for a new one. The scrape itself never waits for nvidia-smi: it
// reports the last read (with its time) and the refresh runs beside it.
const (
	gpuStale       = 10 * time.Second
	gpuReadTimeout = 10 * time.Second
)

var (
	gpuUpDesc = prometheus.NewDesc("aima_gpu_inventory_up",
		"1 when the last read of the GPU inventory (nvidia-smi) worked, else 0. A host without NVIDIA GPUs reads as 1 with no GPUs.", nil, nil)
	gpuReadDesc = prometheus.NewDesc("aima_gpu_inventory_read_timestamp_seconds",
		"When the GPU figures below were read (Unix time).", nil, nil)
	gpuTotalDesc = prometheus.NewDesc("aima_gpu_memory_total_bytes",
		"A GPU's total memory.", []string{"gpu", "uuid", "name"}, nil)
	gpuUsedDesc = prometheus.NewDesc("aima_gpu_memory_used_bytes",
		"A GPU's used memory (by any process, aima's engines or not).", []string{"gpu", "uuid"}, nil)
	gpuUtilDesc = prometheus.NewDesc("aima_gpu_utilization_ratio",
		"A GPU's utilization, 0 to 1.", []string{"gpu", "uuid"}, nil)
	gpuLeaseDesc = prometheus.NewDesc("aima_service_gpu_lease_fraction",
		"The share of a GPU's memory a service holds a lease on (1 = the whole GPU), from its schedule phase until it stops or fails; sleeping is 1 while the service sleeps (the lease keeps the GPU for its wake but leaves it to others).",
		[]string{"service", "engine", "gpu", "uuid", "sleeping"}, nil)
)

// gpuCollector reports the GPU inventory's last read and the services'
// GPU leases (from their records).
type gpuCollector struct {
	m          *Metrics
	refreshing atomic.Bool
}

// Describe implements prometheus.Collector.
func (c *gpuCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{gpuUpDesc, gpuReadDesc, gpuTotalDesc, gpuUsedDesc, gpuUtilDesc, gpuLeaseDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *gpuCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.sources()
	if src == nil || src.GPUs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), gpuReadTimeout)
	defer cancel()
	snap, err := src.GPUs.Last(ctx) // reads once if never read
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(gpuUpDesc, prometheus.GaugeValue, up)
	if !snap.ReadAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(gpuReadDesc, prometheus.GaugeValue, float64(snap.ReadAt.UnixNano())/1e9)
		if time.Since(snap.ReadAt) > gpuStale {
			c.refresh(src.GPUs)
		}
	}
	for _, d := range snap.Devices {
		idx := strconv.Itoa(d.Index)
		if d.MemoryTotalBytes != nil {
			ch <- prometheus.MustNewConstMetric(gpuTotalDesc, prometheus.GaugeValue, float64(*d.MemoryTotalBytes), idx, d.UUID, d.Name)
		}
		if d.MemoryUsedBytes != nil {
			ch <- prometheus.MustNewConstMetric(gpuUsedDesc, prometheus.GaugeValue, float64(*d.MemoryUsedBytes), idx, d.UUID)
		}
		if d.UtilizationPct != nil {
			ch <- prometheus.MustNewConstMetric(gpuUtilDesc, prometheus.GaugeValue, float64(*d.UtilizationPct)/100, idx, d.UUID)
		}
	}
}

// refresh reads the inventory again in the background, one read at a
// time, bounded by gpuReadTimeout.
func (c *gpuCollector) refresh(inv *gpu.Inventory) {
	if !c.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), gpuReadTimeout)
		defer cancel()
		_, _ = inv.Refresh(ctx)
	}()
}

// leaseMetrics are a service's GPU lease series.
func leaseMetrics(s *services.Service) []prometheus.Metric {
	if s.GPULease == nil {
		return nil
	}
	sleeping := strconv.FormatBool(s.Status == services.StatusSleeping)
	var out []prometheus.Metric
	for _, d := range s.GPULease.Devices {
		out = append(out, prometheus.MustNewConstMetric(gpuLeaseDesc, prometheus.GaugeValue, s.GPULease.Fraction,
			s.ID, s.EngineType, strconv.Itoa(d.Index), d.UUID, sleeping))
	}
	return out
}
