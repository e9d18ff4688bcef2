package services

import (
	"context"
	"slices"
	"strings"
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

func gpuManager(t *testing.T, attach runtime.GPUAttach, snap gpu.Snapshot) *Manager {
	t.Helper()
	store := state.NewMemory()
	cat, err := engines.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, nil, events.NewBus(), cat, models.NewRegistry(store), Options{GPUAttach: attach, GPUs: gpu.NewInventory(gpu.Static(snap))})
	t.Cleanup(m.Close)
	return m
}

func twoGPUs() gpu.Snapshot {
	var devs []gpu.Device
	for i, u := range []string{"GPU-aaaa", "GPU-bbbb"} {
		total, free := int64(80)<<30, int64(80)<<30
		devs = append(devs, gpu.Device{Index: i, UUID: u, Name: "H100", MemoryTotalBytes: &total, MemoryFreeBytes: &free, MemoryUsedBytes: new(int64)})
	}
	return gpu.Snapshot{Devices: devs}
}

// Every attach mode names exactly the leased GPUs in NVIDIA_VISIBLE_DEVICES;
// only the device request differs.
func TestContainerSpecGPUs(t *testing.T) {
	lease := &gpu.Lease{Devices: []gpu.LeasedDevice{{Index: 1, UUID: "GPU-bbbb"}}, Fraction: 1}
	for _, attach := range []runtime.GPUAttach{runtime.GPUAttachDeviceRequests, runtime.GPUAttachCDI, runtime.GPUAttachEnv} {
		m := gpuManager(t, attach, twoGPUs())
		eng, _ := m.catalog.Get("vllm")
		eng.Env = map[string]string{gpu.EnvNvidiaVisible: "all"} // an engine default is overridden
		spec, err := m.containerSpec(Service{ID: "svc-1", Run: 1, EngineType: "vllm", GPUs: "auto", GPULease: lease, Env: []string{"A=b"}}, eng)
		if err != nil {
			t.Fatal(err)
		}
		var visible []string
		for _, kv := range spec.Env {
			if v, ok := strings.CutPrefix(kv, gpu.EnvNvidiaVisible+"="); ok {
				visible = append(visible, v)
			}
		}
		if !slices.Equal(visible, []string{"GPU-bbbb"}) || !slices.Contains(spec.Env, "A=b") {
			t.Errorf("%s: env %v", attach, spec.Env)
		}
		want := runtime.GPURequest{DeviceIDs: []string{"GPU-bbbb"}, Attach: attach}
		if spec.GPUs.Attach != want.Attach || !slices.Equal(spec.GPUs.DeviceIDs, want.DeviceIDs) || spec.GPUs.All {
			t.Errorf("%s: GPU request %+v", attach, spec.GPUs)
		}
	}
	// Without a lease (no inventory) the request goes through as given.
	m := gpuManager(t, runtime.GPUAttachDeviceRequests, gpu.Snapshot{})
	for gpus, want := range map[string]runtime.GPURequest{
		"auto": {All: true, Attach: runtime.GPUAttachDeviceRequests}, "2": {Count: 2, Attach: runtime.GPUAttachDeviceRequests},
		"device=0,1": {DeviceIDs: []string{"0", "1"}, Attach: runtime.GPUAttachDeviceRequests}, "none": {},
	} {
		got, _ := m.containerGPUs(Service{GPUs: gpus})
		if got.All != want.All || got.Count != want.Count || !slices.Equal(got.DeviceIDs, want.DeviceIDs) || got.Attach != want.Attach {
			t.Errorf("gpus %s: %+v, want %+v", gpus, got, want)
		}
	}
}

// The lease is taken under the placement lock and dropped when the
// service stops or fails; a refusal for leases needs no fresh inventory.
func TestLeaseLifecycle(t *testing.T) {
	ctx := context.Background()
	m := gpuManager(t, runtime.GPUAttachEnv, twoGPUs())
	mk := func(id string) Service {
		s := Service{ID: id, Name: id, ModelID: "org/model", EngineType: "vllm", GPUs: "auto", Status: StatusCreating, Run: 1, CreatedAt: time.Now()}
		if err := m.col.Create(ctx, id, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b, c := mk("a"), mk("b"), mk("c")
	for _, s := range []Service{a, b} {
		if d, note, err := m.placeService(ctx, s, false); err != nil || d == nil || note != "" {
			t.Fatalf("place %s: %v %v %q", s.ID, d, err, note)
		}
	}
	_, _, err := m.placeService(ctx, c, false)
	if err == nil || !strings.Contains(err.Error(), "held by service a") || !isFinalRefusal(err) {
		t.Fatalf("third placement: %v", err)
	}
	if _, err := m.transition(ctx, "a", StatusFailed, "engine died", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.col.Get(ctx, "a"); got.GPULease != nil {
		t.Errorf("failed service keeps its lease %+v", got.GPULease)
	}
	d, _, err := m.placeService(ctx, c, false)
	if err != nil || d.Lease.Indexes() != "0" {
		t.Fatalf("after a failed: %+v %v", d, err)
	}
	// While c sleeps its lease is dormant: e may take GPU 0, and c's wake
	// (AcquireGPUs) is refused until e is gone, then gets GPU 0 back.
	if _, err := m.col.Update(ctx, "c", func(x *Service) error { x.Status = StatusSleeping; return nil }); err != nil {
		t.Fatal(err)
	}
	e := mk("e")
	if d, _, err := m.placeService(ctx, e, false); err != nil || d.Lease.Indexes() != "0" {
		t.Fatalf("placement beside a sleeping service: %+v %v", d, err)
	}
	if _, err := m.AcquireGPUs(ctx, "c", false); err == nil || !strings.Contains(err.Error(), "held by service e") {
		t.Errorf("wake onto a GPU another service took: %v", err)
	}
	if _, err := m.transition(ctx, "e", StatusFailed, "engine died", nil); err != nil {
		t.Fatal(err)
	}
	got, err := m.AcquireGPUs(ctx, "c", false)
	if err != nil || got.GPULease == nil || got.GPULease.Indexes() != "0" {
		t.Errorf("re-acquire: %+v %v", got.GPULease, err)
	}
	if _, err := m.col.Update(ctx, "c", func(x *Service) error { x.Status = StatusRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	snap, err := m.GPUList(ctx)
	if err != nil || len(snap.Devices[0].HeldBy) != 1 || snap.Devices[0].HeldBy[0].ServiceID != "c" || snap.Devices[1].HeldBy[0].ServiceID != "b" {
		t.Errorf("gpu list %+v %v", snap.Devices, err)
	}
}

// A device list naming one GPU twice (by index and by UUID) is refused at
// create, with invalid_argument on gpus.
func TestCreateRefusesOneGPUNamedTwice(t *testing.T) {
	h := newHarness(t, withGPUs(gpu.Static(twoGPUs())))
	_, err := h.m.Create(h.ctx(), CreateSpec{ModelID: "org/tiny", EngineType: "vllm", Port: loopbackPort(t), GPUs: "device=0,GPU-aaaa"})
	if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != "gpus" || !strings.Contains(err.Error(), "same GPU") {
		t.Errorf("create: %v", err)
	}
}
