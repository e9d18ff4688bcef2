package gpu

import (
	"strings"
	"testing"
	"time"

	"aima/settings"
)

// A cordoned GPU takes no new lease, even forced or named, and the refusal
// says which GPU is cordoned and why; a resume on it (a wake) still passes.
func TestPlaceSkipsCordonedGPU(t *testing.T) {
	snap := snapOf(gpu80(0, 0), gpu80(1, 0))
	cordoned := map[string]Cordon{uuidOf(0): {UUID: uuidOf(0), Index: 0, Reason: "fan failing"}}
	req := Request{ServiceID: "c", Selection: auto(), Estimate: est(18*gib, 0.9, 1, 1), Cordoned: cordoned}
	d, err := Place(snap, nil, req, settings.GPUPolicyPack)
	if err != nil || d.Lease.Indexes() != "1" {
		t.Fatalf("placed %v err %v, want GPU 1", d.Lease.Indexes(), err)
	}
	_, err = Place(snap, []Held{held("a", 1, 1)}, req, settings.GPUPolicyPack)
	r := refusal(t, err)
	if !strings.Contains(r.Message, "GPU 0 ("+uuidOf(0)[:12]+"…) is cordoned (fan failing)") || r.Live {
		t.Errorf("refusal %q live %v, want the cordon named and final", r.Message, r.Live)
	}
	forced := req
	forced.Force = true
	if d, err := Place(snap, []Held{held("a", 1, 1)}, forced, settings.GPUPolicyPack); err != nil || d.Lease.Indexes() != "1" {
		t.Errorf("forced: placed on %q err %v, want the held GPU 1, never the cordoned 0", d.Lease.Indexes(), err)
	}
	named := req
	named.Selection = Selection{Kind: SelectDevices, Devices: []string{"0"}}
	r = refusal(t, func() error { _, err := Place(snap, nil, named, settings.GPUPolicyPack); return err }())
	if !r.Cordoned || !strings.Contains(r.Suggestion, "gpu_uncordon 0") {
		t.Errorf("named refusal %+v", r)
	}
	named.Resume = true
	if _, err := Place(snap, nil, named, settings.GPUPolicyPack); err != nil {
		t.Errorf("resume on a cordoned GPU refused: %v", err)
	}
}

// On a cluster a node's name names each of its GPUs; a node all of whose
// GPUs are cordoned is skipped with one line naming the cordon, and the
// request goes to another node, or is refused with the cordon named. A
// GPU of a node (node/index) is cordoned alone.
func TestClusterCordonByNode(t *testing.T) {
	snap := ClusterSnapshot(cluster(), time.Now())
	devs, node := snap.Named("a10-a")
	if node != "a10-a" || len(devs) != 1 || devs[0].UUID != "a10-a/0" {
		t.Fatalf("named a10-a: %+v %q", devs, node)
	}
	if devs, node := snap.Named("h100-b/3"); node != "" || len(devs) != 1 || devs[0].Index != 3 {
		t.Errorf("named h100-b/3: %+v %q", devs, node)
	}
	if devs, _ := snap.Named("h100-z"); len(devs) != 0 {
		t.Errorf("named an unknown node: %+v", devs)
	}
	if devs, _ := snapOf(gpu80(0, 0)).Named("h100-a"); len(devs) != 0 {
		t.Errorf("a node name on one host: %+v", devs)
	}
	cordoned := map[string]Cordon{"a10-a/0": {UUID: "a10-a/0", Node: "a10-a", Reason: "maintenance"}}
	req := nodeReq(10*gib, count(1))
	req.Cordoned = cordoned
	d, err := Place(snap, nil, req, settings.GPUPolicyPack)
	if err != nil || d.Lease.Node != "a10-b" {
		t.Fatalf("placed %+v %v; want a10-b (a10-a cordoned)", d.Lease, err)
	}
	for _, n := range d.Nodes {
		if n.Node == "a10-a" && (n.Fits || n.Reason != "every GPU of node a10-a is cordoned (maintenance) in aima") {
			t.Errorf("a10-a in the decision: %+v", n)
		}
	}
	// Only the A10s allowed (the H100s' memory would fit anything): one
	// cordoned, one held, so no node fits and the reason names the cordon.
	small := ClusterSnapshot(cluster()[3:], time.Now())
	held := []Held{{ServiceID: "x", Lease: Lease{Node: "a10-b", Devices: []LeasedDevice{{UUID: "a10-b/0"}}}}}
	_, err = Place(small, held, req, settings.GPUPolicyPack)
	if r := refusal(t, err); !strings.Contains(r.Message, "node a10-a: every GPU of node a10-a is cordoned (maintenance) in aima") {
		t.Errorf("refusal %q", r.Message)
	}
	// One GPU of a node cordoned: the others still take leases.
	req.Cordoned = map[string]Cordon{"h100-a/0": {UUID: "h100-a/0", Node: "h100-a"}}
	req.Estimate.PerGPUBytes = 40 * gib
	d, err = Place(snap, nil, req, settings.GPUPolicyPack)
	if err != nil || d.Lease.Node != "h100-a" || d.Lease.Devices[0].UUID != "h100-a/1" {
		t.Errorf("with h100-a/0 cordoned: %+v %v; want h100-a/1", d.Lease, err)
	}
	one := req
	one.Selection = Selection{Kind: SelectDevices, Devices: []string{"h100-a/0"}}
	if r := refusal(t, func() error { _, err := Place(snap, nil, one, settings.GPUPolicyPack); return err }()); !r.Cordoned || !strings.Contains(r.Suggestion, "gpu_uncordon h100-a/0") {
		t.Errorf("named cordoned GPU of a node: %+v", r)
	}
	view := ClusterView(snap, nil, map[string]Cordon{"a10-a/0": {}, "h100-c/1": {}})
	for _, n := range view.Nodes {
		want := map[string]int{"a10-a": 1, "h100-c": 1}[n.Name]
		if n.Cordoned != want || (n.Name == "a10-a" && n.Free != 0) || (n.Name == "h100-c" && n.Free != 7) {
			t.Errorf("view of %s: cordoned %d free %d", n.Name, n.Cordoned, n.Free)
		}
	}
}

// Simulating a release: on one host the lease turns dormant and its share
// comes back as free memory; on a cluster the lease is gone and its Pod's
// GPUs no longer count on its node, so another service fits there.
func TestReleasedOnHostAndCluster(t *testing.T) {
	snap := snapOf(gpu80(0, 72))
	h := held("a", 0.9, 0)
	h.Lease.PerGPUBytes = 70 * gib
	after, leases := Released(snap, []Held{h, held("b", 0.05, 0)}, map[string]bool{"a": true})
	if !leases[0].Dormant || leases[1].Dormant || *after.Devices[0].MemoryFreeBytes != 80*gib || *snap.Devices[0].MemoryFreeBytes != 8*gib {
		t.Errorf("host: leases %+v, free %d (was %d)", leases, *after.Devices[0].MemoryFreeBytes, *snap.Devices[0].MemoryFreeBytes)
	}

	ns := cluster()[3:] // the two A10s, each held by one service
	ns[0].RequestedOwn, ns[1].RequestedOwn = 1, 1
	cl := ClusterSnapshot(ns, time.Now())
	lease := func(node string) Lease {
		return Lease{Node: node, Devices: []LeasedDevice{{UUID: node + "/0"}}, Fraction: 0.9}
	}
	hs := []Held{{ServiceID: "a", Lease: lease("a10-a"), Dormant: true}, {ServiceID: "b", Lease: lease("a10-b")}}
	req := nodeReq(10*gib, count(1))
	if _, err := Place(cl, hs, req, settings.GPUPolicyPack); err == nil {
		t.Fatal("placed with both nodes held (one asleep: its Pod keeps the GPU)")
	}
	after, leases = Released(cl, hs, map[string]bool{"a": true})
	if len(leases) != 1 || leases[0].ServiceID != "b" || after.Nodes[0].RequestedByAima != 0 || cl.Nodes[0].RequestedByAima != 1 {
		t.Fatalf("cluster: leases %+v, nodes %+v", leases, after.Nodes)
	}
	d, err := Place(after, leases, req, settings.GPUPolicyPack)
	if err != nil || d.Lease.Node != "a10-a" {
		t.Errorf("after releasing a: %+v %v; want a10-a", d.Lease, err)
	}
}
