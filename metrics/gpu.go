package metrics

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"aima/gpu"
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
)

// gpuCollector reports the GPU inventory's last read (the services' GPU
// leases are on the service page).
type gpuCollector struct {
	m          *Metrics
	refreshing atomic.Bool
}

// Describe implements prometheus.Collector.
func (c *gpuCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{gpuUpDesc, gpuReadDesc, gpuTotalDesc, gpuUsedDesc, gpuUtilDesc} {
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
