package gpu

import "slices"

// Released is the inventory and the leases as placement would see them
// once the services named in gone have released their GPUs: what an
// eviction simulates before it releases anything. On one host a released
// service sleeps or stops, so its lease turns dormant and its declared
// share (or its estimate) comes back as free memory. On a cluster sleeping
// frees nothing (a sleeping Pod keeps its nvidia.com/gpu request), so an
// evicted service is stopped: its lease is gone, and its Pod's GPUs no
// longer count as this daemon's on its node.
func Released(snap Snapshot, held []Held, gone map[string]bool) (Snapshot, []Held) {
	out := snap
	if snap.Cluster() {
		freed := map[string]int{} // node -> GPUs of the released Pods
		var kept []Held
		for _, h := range held {
			if gone[h.ServiceID] {
				freed[h.Lease.Node] += len(h.Lease.Devices)
				continue
			}
			kept = append(kept, h)
		}
		out.Nodes = slices.Clone(snap.Nodes)
		for i := range out.Nodes {
			n := &out.Nodes[i]
			n.RequestedByAima = max(0, n.RequestedByAima-freed[n.Name])
		}
		return out, kept
	}
	leases := make([]Held, len(held))
	copy(leases, held)
	back := map[string]int64{} // UUID -> memory coming back
	for i := range leases {
		h := &leases[i]
		if !gone[h.ServiceID] {
			continue
		}
		h.Dormant = true
		for _, ld := range h.Lease.Devices {
			back[ld.UUID] += leaseShare(h.Lease, snap, ld.UUID)
		}
	}
	out.Devices = slices.Clone(snap.Devices)
	for i := range out.Devices {
		d := &out.Devices[i]
		if !d.MemoryKnown() || back[d.UUID] == 0 {
			continue
		}
		free := min(*d.MemoryFreeBytes+back[d.UUID], *d.MemoryTotalBytes)
		d.MemoryFreeBytes = &free
	}
	return out, leases
}

// leaseShare is the memory a lease's holder uses on the GPU uuid: its
// estimate, or its declared share of the GPU when that is larger.
func leaseShare(l Lease, snap Snapshot, uuid string) int64 {
	back := l.PerGPUBytes
	if f := l.Fraction; f > 0 && f < 1 {
		for _, d := range snap.Devices {
			if d.UUID == uuid && d.MemoryTotalBytes != nil {
				back = max(back, int64(f*float64(*d.MemoryTotalBytes)))
			}
		}
	}
	return back
}
