package gpu

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"aima/runtime"
	"aima/settings"
)

// BenchmarkFitAcrossNodes: the schedule phase's fit check (Place) on a
// cluster of 100 nodes × 8 H100 GPUs, a third of each node's GPUs taken
// by other Pods and one aima lease on every node, for a request that fits
// (placed by pack) and for one that fits no node (refused with every
// node's figures, the most work Place does). Baseline, in the same run: the
// same check on one host's 8 GPUs. Each figure is the median of many calls
// per iteration (goal: under 5 ms for 100 × 8).
func BenchmarkFitAcrossNodes(b *testing.B) {
	var nodes []runtime.GPUNode
	var held []Held
	for i := range 100 {
		name := fmt.Sprintf("gpu-node-%03d", i)
		nodes = append(nodes, runtime.GPUNode{Name: name, Hostname: name, Product: "NVIDIA-H100-80GB-HBM3", MemoryMiB: 81559,
			LabelCount: 8, Allocatable: 8, RequestedOthers: 3, RequestedOwn: 1, OtherPods: []string{"ml/train-" + name}, Ready: true})
		held = append(held, Held{ServiceID: fmt.Sprintf("svc-%d", i), Lease: Lease{Node: name, Fraction: 1,
			Devices: []LeasedDevice{{Index: 0, UUID: name + "/0"}}}})
	}
	cluster := ClusterSnapshot(nodes, time.Now())
	var devs []Device
	for i := range 8 {
		devs = append(devs, gpu80(i, 0))
	}
	host := snapOf(devs...)
	hostHeld := []Held{held1(0)}
	fits := Request{ServiceID: "new", Selection: count(2), Estimate: est(30*gib, 0.9, 1, 2), Now: time.Now()}
	tooBig := Request{ServiceID: "new", Selection: count(2), Estimate: est(90*gib, 0.9, 1, 2), Now: time.Now()}
	const reps = 50
	median := func(snap Snapshot, held []Held, req Request, wantErr bool) time.Duration {
		ds := make([]time.Duration, 0, reps)
		for range reps {
			t0 := time.Now()
			_, err := Place(snap, held, req, settings.GPUPolicyPack)
			ds = append(ds, time.Since(t0))
			if (err != nil) != wantErr {
				b.Fatalf("Place: %v (want error %v)", err, wantErr)
			}
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	var oneHost, across, refused []time.Duration
	b.ResetTimer()
	for range b.N {
		oneHost = append(oneHost, median(host, hostHeld, fits, false))
		across = append(across, median(cluster, held, fits, false))
		refused = append(refused, median(cluster, held, tooBig, true))
	}
	b.StopTimer()
	mid := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	h, a, r := mid(oneHost), mid(across), mid(refused)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(a), "ms-100x8-fit")
	b.ReportMetric(ms(r), "ms-100x8-refused")
	b.ReportMetric(ms(h), "ms-1x8-fit")
	b.ReportMetric(float64(a)/float64(h), "ratio-fit-vs-1x8")
	b.ReportMetric(float64(r)/float64(h), "ratio-refused-vs-1x8")
	b.Logf("fit check over 100 nodes × 8 GPUs: placed %.3f ms, refused %.3f ms (goal < 5 ms); one host's 8 GPUs %.3f ms; ratios %.0f and %.0f",
		ms(a), ms(r), ms(h), float64(a)/float64(h), float64(r)/float64(h))
}

func held1(idx int) Held { return held("old", 1, idx) }
