package tools

import (
	"strings"
	"testing"
	"time"

	"aima/gpu"
	"aima/runtime"
)

// gpu_list on a cluster renders a line per node, marks the nodes placement
// skips, and names the GPUs that aima's services hold or other Pods take.
func TestGPUListRendersNodes(t *testing.T) {
	snap := gpu.ClusterSnapshot([]runtime.GPUNode{
		{Name: "a10-a", Product: "NVIDIA-A10", MemoryMiB: 23028, Allocatable: 1, Ready: true, Unschedulable: true},
		{Name: "h100-a", Product: "NVIDIA-H100-80GB-HBM3", MemoryMiB: 81559, Allocatable: 8, Ready: true,
			RequestedOthers: 2, OtherPods: []string{"ml/train"}},
	}, time.Now())
	held := []gpu.Held{{ServiceID: "svc-1", Lease: gpu.Lease{Node: "h100-a", Fraction: 1, Devices: []gpu.LeasedDevice{{Index: 0, UUID: "h100-a/0"}}}}}
	snap = gpu.ClusterView(snap, held, nil)
	snap.Devices[1].HeldBy = []gpu.Holder{{ServiceID: "svc-1", Fraction: 1}}
	out := renderNodes(GPUListOutput{Items: snap.Devices, Total: len(snap.Devices), Nodes: snap.Nodes})
	for _, want := range []string{
		"node a10-a  1 × NVIDIA-A10  22.5 GiB each  free 0/1  (aima Pods request 0, other Pods 0)  SKIPPED: cordoned (spec.unschedulable)",
		"node h100-a  8 × NVIDIA-H100-80GB-HBM3  79.6 GiB each  free 5/8",
		"  GPU 0  held by svc-1 (1.00)",
		"  GPU 7  requested by other Pods on the node (ml/train)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "GPU 3 ") {
		t.Errorf("a free GPU is listed:\n%s", out)
	}
}
