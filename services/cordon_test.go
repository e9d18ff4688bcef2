package services

import (
	"testing"

	"aima/engines"
	"aima/errs"
	"aima/events"
	"aima/gpu"
	"aima/models"
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
	if _, err := m.Uncordon(t.Context(), "1"); err != nil {
		t.Fatal(err)
	}
	if cs, _ := m.Cordons(t.Context()); len(cs) != 0 {
		t.Errorf("cordons after uncordon: %+v", cs)
	}
}
