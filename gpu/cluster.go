package gpu

import (
	"context"
	"strconv"
	"strings"
	"time"

	"aima/errs"
	"aima/runtime"
)

// A cluster's GPUs (runtime: kubernetes): each node that offers
// nvidia.com/gpu becomes one Device per allocatable GPU, named
// "<node>/<index>", with the memory its GPU Feature Discovery labels give.
// Leases, cordons and the fit check work on them as on one host's GPUs;
// Place adds that all the GPUs of a request are on one node (see
// across.go). Which GPUs of a node other Pods take is not known (the
// node's device plugin decides): their count is marked on the node's
// highest indexes (Occupancy), so aima's leases take the lowest.

// Node is a cluster node with GPUs, as gpu_list shows it and placement
// judges it.
type Node struct {
	Name              string   `json:"name" jsonschema:"the node's name"`
	Product           string   `json:"product,omitempty" jsonschema:"GPU model from the nvidia.com/gpu.product label"`
	MemoryPerGPUBytes *int64   `json:"memory_per_gpu_bytes,omitempty" jsonschema:"each GPU's memory from the nvidia.com/gpu.memory label (absent when the node does not carry it: the memory fit is then not checked)"`
	GPUs              int      `json:"gpus" jsonschema:"allocatable nvidia.com/gpu"`
	CountLabel        int      `json:"count_label,omitempty" jsonschema:"the nvidia.com/gpu.count label (what the node has; gpus is what it offers)"`
	RequestedByAima   int      `json:"requested_by_aima" jsonschema:"GPUs the non-terminated Pods of this daemon on the node request"`
	RequestedByOthers int      `json:"requested_by_others" jsonschema:"GPUs every other non-terminated Pod on the node requests (other workloads, other aima daemons)"`
	OtherPods         []string `json:"other_pods,omitempty" jsonschema:"namespace/name of those other Pods (the first few)"`
	Free              int      `json:"free" jsonschema:"GPUs a start could lease there now: allocatable minus what Pods request and aima's leases hold, minus cordoned GPUs (0 on a skipped node)"`
	Cordoned          int      `json:"cordoned,omitempty" jsonschema:"GPUs of the node cordoned in aima (gpu_cordon with the node's name or node/index; aima never changes the Node itself)"`
	Ready             bool     `json:"ready" jsonschema:"the node's Ready condition"`
	Unschedulable     bool     `json:"unschedulable,omitempty" jsonschema:"the node is cordoned (spec.unschedulable)"`
	Skipped           string   `json:"skipped,omitempty" jsonschema:"why placement skips the node: not ready, cordoned, or a taint aima's Pods do not tolerate"`
}

// Cluster reports a snapshot of a cluster's GPUs.
func (s Snapshot) Cluster() bool { return len(s.Nodes) > 0 }

// ClusterSource is the inventory of a cluster runtime's GPU nodes.
type ClusterSource struct {
	Nodes runtime.GPUNodeLister
}

// Read implements Source. A daemon not allowed to read the cluster's
// nodes gets an empty inventory with a note (GPUs are then asked for by
// count, unchecked, as without nvidia-smi on one host); any other failure
// is an Unavailable error.
func (c ClusterSource) Read(ctx context.Context) (Snapshot, error) {
	nodes, err := c.Nodes.GPUNodes(ctx)
	if errs.Is(err, errs.PermissionDenied) {
		return Snapshot{Devices: []Device{}, Note: "the cluster's GPU nodes cannot be read (" + err.Error() + ")"}, nil
	}
	if err != nil {
		return Snapshot{}, errs.Wrap(errs.Unavailable, err, "cluster GPU nodes")
	}
	return ClusterSnapshot(nodes, time.Now().UTC()), nil
}

// ClusterSnapshot turns a cluster's GPU nodes into an inventory.
func ClusterSnapshot(nodes []runtime.GPUNode, at time.Time) Snapshot {
	total := 0
	for _, g := range nodes {
		total += max(0, g.Allocatable)
	}
	snap := Snapshot{Devices: make([]Device, 0, total), Nodes: make([]Node, 0, len(nodes)), ReadAt: at}
	if len(nodes) == 0 {
		snap.Note = "no node offers nvidia.com/gpu (within the configured node_selector)"
	}
	for _, g := range nodes {
		n := Node{Name: g.Name, Product: g.Product, GPUs: g.Allocatable, CountLabel: g.LabelCount,
			RequestedByAima: g.RequestedOwn, RequestedByOthers: g.RequestedOthers, OtherPods: g.OtherPods,
			Ready: g.Ready, Unschedulable: g.Unschedulable}
		var mem *int64
		if g.MemoryMiB > 0 {
			mem = ptr(g.MemoryMiB << 20)
			n.MemoryPerGPUBytes = mem
		}
		switch {
		case !g.Ready:
			n.Skipped = "not ready: " + g.NotReady
		case g.Unschedulable:
			n.Skipped = "cordoned (spec.unschedulable)"
		case g.Untolerated != "":
			n.Skipped = "taint " + g.Untolerated + " is not tolerated by aima's Pods"
		}
		snap.Nodes = append(snap.Nodes, n)
		for i := range g.Allocatable {
			d := Device{Index: i, UUID: g.Name + "/" + strconv.Itoa(i), Name: g.Product, Node: g.Name}
			if mem != nil {
				d.MemoryTotalBytes, d.MemoryFreeBytes = mem, mem // used: not known without the node's driver
			}
			snap.Devices = append(snap.Devices, d)
		}
	}
	return snap
}

// Occupancy says which GPUs of a cluster's nodes something other than
// aima's leases takes, by device UUID, with what: on each node, as many as
// other Pods request, plus as many as this daemon's Pods request beyond
// the GPUs its leases hold there (a Pod still terminating after its
// service stopped, or one started without a lease), marked on the
// highest indexes not leased. Every lease counts, a sleeping service's
// too: its Pod keeps its GPUs. Nil on one host.
func Occupancy(snap Snapshot, held []Held) map[string]string {
	if !snap.Cluster() {
		return nil
	}
	leased := map[string]bool{}
	for _, h := range held {
		for _, d := range h.Lease.Devices {
			leased[d.UUID] = true
		}
	}
	occ := map[string]string{}
	groups := byNode(snap)
	for _, n := range snap.Nodes {
		devs := groups[n.Name]
		onNode := 0
		for _, d := range devs {
			if leased[d.UUID] {
				onNode++
			}
		}
		others, own := n.RequestedByOthers, max(0, n.RequestedByAima-onNode)
		by := "other Pods on the node"
		if len(n.OtherPods) > 0 {
			by += " (" + strings.Join(n.OtherPods, ", ") + ")"
		}
		for i := len(devs) - 1; i >= 0 && others+own > 0; i-- {
			d := devs[i]
			if leased[d.UUID] {
				continue
			}
			if others > 0 {
				occ[d.UUID] = by
				others--
				continue
			}
			occ[d.UUID] = "this daemon's Pods beyond its leases (stopping, or started without a lease)"
			own--
		}
	}
	return occ
}

// ClusterView is snap with each GPU's RequestedBy and each node's Free
// count filled in from the leases and cordons, for gpu_list. One host's
// snapshot is returned as it is.
func ClusterView(snap Snapshot, held []Held, cordoned map[string]Cordon) Snapshot {
	if !snap.Cluster() {
		return snap
	}
	occ := Occupancy(snap, held)
	leased := map[string]bool{}
	for _, h := range held {
		for _, d := range h.Lease.Devices {
			leased[d.UUID] = true
		}
	}
	free, cordons := map[string]int{}, map[string]int{}
	devs := make([]Device, len(snap.Devices))
	for i, d := range snap.Devices {
		d.RequestedBy = occ[d.UUID]
		devs[i] = d
		_, c := cordoned[d.UUID]
		if c {
			cordons[d.Node]++
		}
		if d.RequestedBy == "" && !leased[d.UUID] && !c {
			free[d.Node]++
		}
	}
	nodes := make([]Node, len(snap.Nodes))
	for i, n := range snap.Nodes {
		if n.Skipped == "" {
			n.Free = free[n.Name]
		}
		n.Cordoned = cordons[n.Name]
		nodes[i] = n
	}
	snap.Devices, snap.Nodes = devs, nodes
	return snap
}

// byNode groups a cluster's devices by node, each group in index order
// (as ClusterSnapshot lays them out).
func byNode(snap Snapshot) map[string][]Device {
	out := make(map[string][]Device, len(snap.Nodes))
	start := 0
	for i := 1; i <= len(snap.Devices); i++ {
		if i == len(snap.Devices) || snap.Devices[i].Node != snap.Devices[start].Node {
			out[snap.Devices[start].Node] = snap.Devices[start:i:i]
			start = i
		}
	}
	return out
}
