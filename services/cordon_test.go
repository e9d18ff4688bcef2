package services

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/engines"
	"aima/errs"
	"aima/events"
	"aima/gpu"
	"aima/models"
	"aima/runtime"
	"aima/state"
)

// A cordon is kept in the state store: a manager on the same store (a
// daemon restart) still sees it, gpu_list shows it, and an unknown GPU is
// not found.
func TestCordonSurvivesRestart(t *testing.T) {
	store := state.NewMemory()
	cat, err := engines.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	newManager := func() *Manager {
		return NewManager(store, nil, events.NewBus(), cat, models.NewRegistry(store), Options{GPUs: gpu.NewInventory(gpu.Static(twoGPUs()))})
	}
	m := newManager()
	if _, err := m.Cordon(t.Context(), "GPU-bbbb", "ECC errors"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Cordon(t.Context(), "7", ""); !errs.Is(err, errs.NotFound) {
		t.Errorf("cordon of GPU 7: %v, want not found", err)
	}
	if _, err := m.Cordon(t.Context(), "0", "bad\x1breason"); !errs.Is(err, errs.InvalidArgument) {
		t.Errorf("reason with a control character: %v, want invalid", err)
	}
	m.Close()

	m = newManager()
	defer m.Close()
	snap, err := m.GPUList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c := snap.Devices[1].Cordon; c == nil || c.Index != 1 || c.Reason != "ECC errors" || snap.Devices[0].Cordon != nil {
		t.Errorf("after a restart: cordons %+v / %+v", snap.Devices[0].Cordon, c)
	}
	if r, err := m.Uncordon(t.Context(), "1"); err != nil || len(r.Cordons) != 1 || r.Cordons[0].Reason != "ECC errors" {
		t.Fatalf("uncordon: %+v, %v", r, err)
	}
	if cs, _ := m.Cordons(t.Context()); len(cs) != 0 {
		t.Errorf("cordons after uncordon: %+v", cs)
	}
}

// On a cluster a node's name cordons each of its GPUs (records keyed
// without the "/" of node/index, and hashed for a long node name), a
// GPU's node/index one of them; an unknown name is not found, and a
// cordon whose node left the inventory is still uncordoned by its name.
func TestCordonOnACluster(t *testing.T) {
	long := strings.Repeat("n", 200)
	nodes := []runtime.GPUNode{
		{Name: "a", Hostname: "a", Allocatable: 2, Ready: true},
		{Name: long, Hostname: long, Allocatable: 1, Ready: true},
	}
	src := &switchable{snap: gpu.ClusterSnapshot(nodes, time.Now())}
	m := gpuManagerFrom(t, src)
	ctx := t.Context()
	r, err := m.Cordon(ctx, "a", "maintenance")
	if err != nil || r.Node != "a" || len(r.Cordons) != 2 || r.Cordons[1].UUID != "a/1" || r.Text() != "node a" {
		t.Fatalf("cordon of node a: %+v, %v", r, err)
	}
	if r, err = m.Cordon(ctx, long+"/0", ""); err != nil || r.Node != "" || len(r.Cordons) != 1 || r.Text() != "GPU 0 on node "+long {
		t.Fatalf("cordon of %s/0: %+v, %v", long[:8], r, err)
	}
	if _, err := m.Cordon(ctx, "b", ""); !errs.Is(err, errs.NotFound) || !strings.Contains(err.Error(), "no GPU node or GPU named b") {
		t.Errorf("cordon of node b: %v", err)
	}
	cs, err := m.Cordons(ctx)
	if err != nil || len(cs) != 3 || cs["a/0"].Reason != "maintenance" || cs[long+"/0"].Node != long {
		t.Fatalf("cordons %+v, %v", cs, err)
	}
	snap, err := m.GPUList(ctx)
	if err != nil || snap.Nodes[0].Cordoned != 2 || snap.Nodes[0].Free != 0 || snap.Devices[2].Cordon == nil {
		t.Errorf("gpu list %+v, %v", snap.Nodes, err)
	}
	// Node a leaves the cluster: its cordons are found by its name.
	src.set(gpu.ClusterSnapshot(nodes[1:], time.Now()))
	if r, err = m.Uncordon(ctx, "a"); err != nil || len(r.Cordons) != 2 || r.Node != "a" {
		t.Fatalf("uncordon of the gone node a: %+v, %v", r, err)
	}
	if r, err = m.Uncordon(ctx, long); err != nil || len(r.Cordons) != 1 {
		t.Fatalf("uncordon of the long node: %+v, %v", r, err)
	}
	if cs, _ := m.Cordons(ctx); len(cs) != 0 {
		t.Errorf("cordons left: %+v", cs)
	}
}

// switchable is an inventory source whose snapshot a test changes.
type switchable struct {
	mu   sync.Mutex
	snap gpu.Snapshot
}

func (s *switchable) Read(context.Context) (gpu.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, nil
}

func (s *switchable) set(snap gpu.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = snap
}

func gpuManagerFrom(t *testing.T, src gpu.Source) *Manager {
	t.Helper()
	store := state.NewMemory()
	cat, err := engines.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, nil, events.NewBus(), cat, models.NewRegistry(store), Options{GPUs: gpu.NewInventory(src)})
	t.Cleanup(m.Close)
	return m
}
