package services

import (
	"slices"
	"testing"
	"time"

	"aima/gpu"
	"aima/runtime"
)

// chooseVictims takes the fewest least recently used idle evictable
// services whose release lets the start fit, never a busy one, never one
// that is not evictable.
func TestChooseVictims(t *testing.T) {
	snap := twoGPUs()
	m := gpuManager(t, runtime.GPUAttachEnv, snap)
	fs := newFakeServing()
	m.Attach(fs)
	ctx := t.Context()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	held := func(id string, idx int, fraction float64, used time.Time, evictable bool) {
		t.Helper()
		s := Service{ID: id, Name: id, EngineType: "vllm", ModelID: "org/tiny", GPUs: "auto", Status: StatusRunning, Evictable: evictable, ReadyAt: &used,
			GPULease: &gpu.Lease{Devices: []gpu.LeasedDevice{{Index: idx, UUID: snap.Devices[idx].UUID}}, Fraction: fraction}}
		if err := m.col.Create(ctx, id, s); err != nil {
			t.Fatal(err)
		}
		fs.setLastUsed(id, used)
	}
	held("a", 0, 0.45, base, true)                    // least recently used
	held("b", 1, 0.9, base.Add(time.Minute), true)    //
	held("c", 0, 0.45, base.Add(2*time.Minute), true) // most recently used
	held("pinned", 1, 0.05, base, false)              // not evictable, and small enough not to matter
	s := Service{ID: "new", Name: "new", EngineType: "vllm", ModelID: "org/tiny", GPUs: "auto", Args: []string{"--gpu-memory-utilization=0.9"}}
	req, snapNow, note, err := m.placementRequest(ctx, s, false, true)
	if err != nil || note != "" {
		t.Fatalf("request: %v %s", err, note)
	}
	ids := func(cs []evictCandidate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.s.ID)
		}
		return out
	}
	// a alone frees nothing whole (c stays on GPU 0); b alone frees GPU 1
	// (the pinned 0.05 leaves room for 0.9): only b goes, though a is
	// older.
	v, busy := m.chooseVictims(ctx, s, snapNow, req)
	if got := ids(v); !slices.Equal(got, []string{"b"}) || len(busy) != 0 {
		t.Errorf("victims %v busy %v, want [b]", got, busy)
	}
	// With b busy, GPU 0 must be emptied: a and c, and b is named busy.
	fs.setInFlight("b", 1)
	v, busy = m.chooseVictims(ctx, s, snapNow, req)
	if got := ids(v); !slices.Equal(got, []string{"a", "c"}) || !slices.Equal(busy, []string{"b"}) {
		t.Errorf("victims %v busy %v, want [a c] with b busy", got, busy)
	}
	// With c busy too, nothing can make room: no victim at all.
	fs.setInFlight("c", 1)
	if v, _ = m.chooseVictims(ctx, s, snapNow, req); len(v) != 0 {
		t.Errorf("victims %v, want none when releasing every idle one would not do", ids(v))
	}
}

// On a cluster a sleeping Pod keeps its GPU: the simulation takes a
// victim's lease as gone (not dormant), so the least recently used idle
// evictable service's node is freed; one asleep there is a candidate too;
// a busy or non-evictable one never is.
func TestChooseVictimsOnACluster(t *testing.T) {
	nodes := []runtime.GPUNode{
		{Name: "a", Hostname: "a", Product: "NVIDIA-A10", MemoryMiB: 23028, Allocatable: 1, Ready: true, RequestedOwn: 1},
		{Name: "b", Hostname: "b", Product: "NVIDIA-A10", MemoryMiB: 23028, Allocatable: 1, Ready: true, RequestedOwn: 1},
	}
	snap := gpu.ClusterSnapshot(nodes, time.Now())
	m := gpuManager(t, runtime.GPUAttachEnv, snap)
	fs := newFakeServing()
	m.Attach(fs)
	ctx := t.Context()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	held := func(id, node string, st Status, used time.Time, evictable bool) {
		t.Helper()
		s := Service{ID: id, Name: id, EngineType: "vllm", ModelID: "org/tiny", GPUs: "auto", Status: st, Evictable: evictable, ReadyAt: &used,
			GPULease: &gpu.Lease{Node: node, Devices: []gpu.LeasedDevice{{Index: 0, UUID: node + "/0"}}, Fraction: 0.9}}
		if err := m.col.Create(ctx, id, s); err != nil {
			t.Fatal(err)
		}
		fs.setLastUsed(id, used)
	}
	held("old", "a", StatusSleeping, base, true) // asleep, least recently used: its Pod keeps GPU a/0
	held("new", "b", StatusRunning, base.Add(time.Minute), true)
	s := Service{ID: "x", Name: "x", EngineType: "vllm", ModelID: "org/tiny", GPUs: "auto"}
	req, snapNow, note, err := m.placementRequest(ctx, s, false, true)
	if err != nil || note != "" {
		t.Fatalf("request: %v %s", err, note)
	}
	if _, err := m.place(ctx, snapNow, req, ""); err == nil {
		t.Fatal("placed with both nodes held")
	}
	v, busy := m.chooseVictims(ctx, s, snapNow, req)
	if len(v) != 1 || v[0].s.ID != "old" || len(busy) != 0 {
		t.Errorf("victims %+v busy %v, want [old]", v, busy)
	}
	// old busy (a request waking it): new goes instead.
	fs.setWaiting("old", 1)
	if v, _ = m.chooseVictims(ctx, s, snapNow, req); len(v) != 1 || v[0].s.ID != "new" {
		t.Errorf("victims %+v, want [new]", v)
	}
	// new not evictable: nothing can make room.
	if _, err := m.col.Update(ctx, "new", func(x *Service) error { x.Evictable = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if v, _ = m.chooseVictims(ctx, s, snapNow, req); len(v) != 0 {
		t.Errorf("victims %+v, want none", v)
	}
}
