package gpu

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"aima/runtime"
	"aima/settings"
)

// cluster is three nodes of 8 H100 80 GB GPUs and two of one A10 24 GB,
// as GPU Feature Discovery labels them.
func cluster() []runtime.GPUNode {
	var ns []runtime.GPUNode
	for _, n := range []string{"h100-a", "h100-b", "h100-c"} {
		ns = append(ns, runtime.GPUNode{Name: n, Hostname: n, Product: "NVIDIA-H100-80GB-HBM3", MemoryMiB: 81559, LabelCount: 8, Allocatable: 8, Ready: true})
	}
	for _, n := range []string{"a10-a", "a10-b"} {
		ns = append(ns, runtime.GPUNode{Name: n, Hostname: n, Product: "NVIDIA-A10", MemoryMiB: 23028, LabelCount: 1, Allocatable: 1, Ready: true})
	}
	return ns
}

func nodeReq(perGPU int64, sel Selection) Request {
	return Request{ServiceID: "s", Selection: sel, Estimate: est(perGPU, 0.9, 1, 1), Now: time.Now()}
}

func count(n int) Selection { return Selection{Kind: SelectCount, Count: n} }

func TestClusterSnapshotSynthesizesOneDevicePerAllocatableGPU(t *testing.T) {
	ns := cluster()
	ns[0].Unschedulable = true
	ns[1].Ready, ns[1].NotReady = false, "Ready is Unknown (NodeStatusUnknown)"
	snap := ClusterSnapshot(ns, time.Now())
	if len(snap.Devices) != 26 || len(snap.Nodes) != 5 || !snap.Cluster() {
		t.Fatalf("%d devices, %d nodes", len(snap.Devices), len(snap.Nodes))
	}
	d, ok := snap.Find("h100-c/7")
	if !ok || d.Node != "h100-c" || d.Index != 7 || d.Total() != 81559<<20 || d.Label() != "GPU 7 on node h100-c" {
		t.Errorf("h100-c/7: %+v %v", d, ok)
	}
	if _, ok := snap.Find("0"); ok {
		t.Error("a bare index found a GPU of a cluster")
	}
	if snap.Nodes[0].Skipped != "cordoned (spec.unschedulable)" || !strings.HasPrefix(snap.Nodes[1].Skipped, "not ready: Ready is Unknown") {
		t.Errorf("skips: %+v", snap.Nodes)
	}
}

func TestPlaceAcrossNodesByPolicy(t *testing.T) {
	ns := cluster()
	ns[0].RequestedOthers, ns[0].OtherPods = 2, []string{"ml/train-1"} // h100-a: 6 free
	snap := ClusterSnapshot(ns, time.Now())
	for _, c := range []struct {
		name   string
		perGPU int64
		sel    Selection
		policy settings.GPUPolicy
		node   string
		gpus   string
	}{
		{"small model packs onto an A10", 10 * gib, count(1), settings.GPUPolicyPack, "a10-a", "0"},
		{"small model spreads onto the emptiest H100", 10 * gib, count(1), settings.GPUPolicySpread, "h100-b", "0"},
		{"large model packs onto the fullest H100", 40 * gib, count(2), settings.GPUPolicyPack, "h100-a", "0,1"},
		{"large model spreads", 40 * gib, count(2), settings.GPUPolicySpread, "h100-b", "0,1"},
		{"all takes a whole free node", 40 * gib, Selection{Kind: SelectAll}, settings.GPUPolicySpread, "h100-b", "0,1,2,3,4,5,6,7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := Place(snap, nil, nodeReq(c.perGPU, c.sel), c.policy)
			if err != nil {
				t.Fatal(err)
			}
			if d.Lease.Node != c.node || d.Lease.Indexes() != c.gpus || !strings.HasPrefix(d.Message, "node "+c.node+" ") {
				t.Errorf("placed on %s GPUs %s (%s); want %s GPUs %s", d.Lease.Node, d.Lease.Indexes(), d.Message, c.node, c.gpus)
			}
			if d.Lease.Devices[0].UUID != c.node+"/"+strings.Split(c.gpus, ",")[0] {
				t.Errorf("device %+v", d.Lease.Devices[0])
			}
		})
	}
}

func TestPlaceAcrossNodesTakesTheOtherNodeWhenLeased(t *testing.T) {
	snap := ClusterSnapshot(cluster(), time.Now())
	first, err := Place(snap, nil, nodeReq(10*gib, count(1)), settings.GPUPolicyPack)
	if err != nil || first.Lease.Node != "a10-a" {
		t.Fatalf("%+v %v", first.Lease, err)
	}
	held := []Held{{ServiceID: "one", Lease: first.Lease, Dormant: true}} // asleep: its Pod keeps the GPU
	second, err := Place(snap, held, nodeReq(10*gib, count(1)), settings.GPUPolicyPack)
	if err != nil || second.Lease.Node != "a10-b" {
		t.Fatalf("second: %+v %v", second.Lease, err)
	}
	// A small share does not share a GPU of a node: the Pod takes it whole.
	small := nodeReq(5*gib, count(1))
	small.Estimate.Util, small.Estimate.Fraction = 0.2, 0.2
	held = append(held, Held{ServiceID: "two", Lease: second.Lease})
	third, err := Place(snap, held, small, settings.GPUPolicyPack)
	if err != nil || !strings.HasPrefix(third.Lease.Node, "h100-") {
		t.Fatalf("third: %+v %v", third.Lease, err)
	}
}

func TestPlaceAcrossNodesRefusesWithFiguresPerNode(t *testing.T) {
	ns := cluster()
	ns[0].Unschedulable = true
	ns[1].Ready, ns[1].NotReady = false, "Ready is False (KubeletNotReady)"
	snap := ClusterSnapshot(ns, time.Now())
	req := nodeReq(200*gib, count(1))
	req.Estimate.WeightsBytes = 199 * gib
	_, err := Place(snap, nil, req, settings.GPUPolicyPack)
	r := refusal(t, err)
	t.Logf("refusal: %s", r.Error())
	if len(r.Nodes) != 5 || r.Nodes[0].Node != "h100-a" || r.Nodes[0].Fits {
		t.Fatalf("nodes %+v", r.Nodes)
	}
	for _, want := range []string{"no node of 5 fits", "node h100-a: skipped: cordoned", "node h100-b: skipped: not ready",
		"memory utilization 0.90 of GPU 0 on node a10-a (22.5 GiB) allows 20.2 GiB", "(and the same on 1 more node(s))", "node h100-c: "} {
		if !strings.Contains(r.Message, want) {
			t.Errorf("refusal %q lacks %q", r.Message, want)
		}
	}
	if !strings.Contains(r.Suggestion, "--tensor-parallel-size") {
		t.Errorf("suggestion %q", r.Suggestion)
	}
	// Force never lands on a skipped node.
	ns = cluster()[:2]
	ns[0].Unschedulable, ns[1].Untolerated = true, "dedicated=ml:NoSchedule"
	req = nodeReq(1*gib, count(1))
	req.Force = true
	_, err = Place(ClusterSnapshot(ns, time.Now()), nil, req, settings.GPUPolicyPack)
	if r := refusal(t, err); !r.NodeSkipped && !strings.Contains(r.Message, "taint dedicated=ml:NoSchedule is not tolerated") {
		t.Errorf("forced onto skipped nodes: %q", r.Message)
	}
	// More GPUs than any node has is refused as such.
	_, err = Place(snap, nil, nodeReq(1*gib, count(16)), settings.GPUPolicyPack)
	if r := refusal(t, err); !strings.Contains(r.Message, "needs 16 GPUs on one node; the largest node has 8") || r.Live {
		t.Errorf("refusal %q (live %v)", r.Message, r.Live)
	}
}

func TestOtherPodsTakeTheHighestGPUsOfANode(t *testing.T) {
	ns := cluster()[3:4] // a10-a
	ns[0].RequestedOthers, ns[0].OtherPods = 1, []string{"default/cuda-job"}
	snap := ClusterSnapshot(ns, time.Now())
	_, err := Place(snap, nil, nodeReq(1*gib, count(1)), settings.GPUPolicyPack)
	if r := refusal(t, err); !r.Held || !r.Live || !strings.Contains(r.Message, "GPU 0 on node a10-a is requested by other Pods on the node (default/cuda-job)") {
		t.Errorf("refusal %q", r.Message)
	}
	// Force pins it there anyway: the cluster's scheduler decides.
	req := nodeReq(1*gib, count(1))
	req.Force = true
	if d, err := Place(snap, nil, req, settings.GPUPolicyPack); err != nil || d.Lease.Node != "a10-a" {
		t.Errorf("forced: %+v %v", d.Lease, err)
	}

	h := ClusterSnapshot(cluster()[:1], time.Now())
	h.Nodes[0].RequestedByOthers = 3
	h.Nodes[0].RequestedByAima = 2 // one of them without a lease
	lease := Lease{Node: "h100-a", Devices: []LeasedDevice{{Index: 0, UUID: "h100-a/0"}}}
	held := []Held{{ServiceID: "x", Lease: lease}}
	view := ClusterView(h, held, map[string]Cordon{"h100-a/1": {UUID: "h100-a/1"}})
	var taken []string
	for _, d := range view.Devices {
		if d.RequestedBy != "" {
			taken = append(taken, fmt.Sprint(d.Index))
		}
	}
	if strings.Join(taken, ",") != "4,5,6,7" || view.Nodes[0].Free != 2 {
		t.Errorf("taken %v, free %d; want 4,5,6,7 and 2 (0 leased, 1 cordoned)", taken, view.Nodes[0].Free)
	}
}

func TestResumeKeepsItsNodeAndDevicesMustShareANode(t *testing.T) {
	snap := ClusterSnapshot(cluster(), time.Now())
	lease := Lease{Node: "h100-b", Devices: []LeasedDevice{{Index: 0, UUID: "h100-b/0"}, {Index: 1, UUID: "h100-b/1"}}}
	snap.Nodes[1].Unschedulable, snap.Nodes[1].Skipped = true, "cordoned (spec.unschedulable)"
	snap.Nodes[1].RequestedByAima = 2
	req := nodeReq(10*gib, Selection{Kind: SelectDevices, Devices: lease.UUIDs()})
	req.Resume = true
	d, err := Place(snap, []Held{{ServiceID: "s", Lease: lease}}, req, settings.GPUPolicyPack)
	if err != nil || d.Lease.Node != "h100-b" || d.Lease.Indexes() != "0,1" {
		t.Fatalf("resume: %+v %v", d.Lease, err)
	}
	req = nodeReq(10*gib, Selection{Kind: SelectDevices, Devices: []string{"h100-a/0", "h100-c/0"}})
	if _, err := Place(snap, nil, req, settings.GPUPolicyPack); !strings.Contains(refusal(t, err).Message, "different nodes") {
		t.Errorf("devices on two nodes: %v", err)
	}
	req = nodeReq(10*gib, Selection{Kind: SelectDevices, Devices: []string{"0"}})
	if _, err := Place(snap, nil, req, settings.GPUPolicyPack); !strings.Contains(refusal(t, err).Suggestion, "gpus N") {
		t.Errorf("an index on a cluster: %v", err)
	}
}
