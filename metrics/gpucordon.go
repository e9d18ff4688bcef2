package metrics

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

var gpuCordonedDesc = prometheus.NewDesc("aima_gpu_cordoned",
	"1 while a GPU is cordoned (it takes no new service: gpu_cordon, gpu_drain), else 0; one series per GPU of the inventory's last read.", []string{"gpu", "uuid"}, nil)

// gpuCordonCollector reports which GPUs are cordoned, from the state
// store's cordon records and the inventory's last read.
type gpuCordonCollector struct{ m *Metrics }

// Describe implements prometheus.Collector.
func (c *gpuCordonCollector) Describe(ch chan<- *prometheus.Desc) { ch <- gpuCordonedDesc }

// Collect implements prometheus.Collector.
func (c *gpuCordonCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.sources()
	if src == nil || src.GPUs == nil || src.Services == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), gpuReadTimeout)
	defer cancel()
	snap, err := src.GPUs.Last(ctx)
	if err != nil {
		return
	}
	cordoned, err := src.Services.Cordons(ctx)
	if err != nil {
		return
	}
	for _, d := range snap.Devices {
		v := 0.0
		if _, ok := cordoned[d.UUID]; ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(gpuCordonedDesc, prometheus.GaugeValue, v, strconv.Itoa(d.Index), d.UUID)
	}
}
