package services

import (
	"context"
	"strings"
	"testing"

	"aima/errs"
	"aima/gpu"
	"aima/runtime"
	"aima/runtime/fakeruntime"
)

// failingSource is a GPU inventory whose driver is broken.
type failingSource struct{}

func (failingSource) Read(context.Context) (gpu.Snapshot, error) {
	return gpu.Snapshot{}, errs.New(errs.Unavailable, "nvidia-smi failed (exit 18): Failed to initialize NVML: Driver/library version mismatch")
}

func withGPUs(src gpu.Source) func(*Options) {
	return func(o *Options) { o.GPUs, o.GPUAttach = gpu.NewInventory(src), runtime.GPUAttachEnv }
}

func oneGPU() gpu.Source {
	snap := twoGPUs()
	snap.Devices = snap.Devices[:1]
	return gpu.Static(snap)
}

func onGPUs(gpus string) func(*CreateSpec) { return func(c *CreateSpec) { c.GPUs = gpus } }

// A start that cannot be placed fails in schedule, unschedulable, before
// any pull or container; stopping the holder frees the GPU.
func TestScheduleRefusalBeforePullAndCreate(t *testing.T) {
	h := newHarness(t, withGPUs(oneGPU()))
	a := h.create(serving(), onGPUs("auto"))
	b := h.create(serving(), onGPUs("auto"))
	h.start(a.ID)
	ra := h.awaitStatus(a.ID, StatusRunning)
	if ra.GPULease == nil || ra.GPULease.Indexes() != "0" {
		t.Fatalf("a's lease %+v", ra.GPULease)
	}
	creates, checks := h.fr.Calls(fakeruntime.OpCreate), h.fr.Calls(fakeruntime.OpImageExists)
	h.start(b.ID)
	rb := h.awaitStatus(b.ID, StatusFailed)
	wantFailed(t, rb, FailureUnschedulable, PhaseSchedule, "held by service "+a.ID, "GiB")
	if h.fr.Calls(fakeruntime.OpCreate) != creates || h.fr.Calls(fakeruntime.OpImageExists) != checks {
		t.Errorf("the refused start reached the runtime: creates %d→%d, image checks %d→%d", creates, h.fr.Calls(fakeruntime.OpCreate), checks, h.fr.Calls(fakeruntime.OpImageExists))
	}
	if cs := h.fr.Containers(map[string]string{runtime.LabelService: b.ID}); len(cs) != 0 {
		t.Errorf("refused service has containers %+v", cs)
	}
	if _, err := h.m.Stop(h.ctx(), a.ID); err != nil {
		t.Fatal(err)
	}
	if got := h.get(a.ID); got.GPULease != nil {
		t.Errorf("stopped service keeps its lease %+v", got.GPULease)
	}
	h.start(b.ID)
	if got := h.awaitStatus(b.ID, StatusRunning); got.GPULease == nil || got.GPULease.Indexes() != "0" {
		t.Errorf("b after a stopped: lease %+v", got.GPULease)
	}
}

// A broken driver fails the start as gpu_unavailable; force runs it
// without an inventory (its request goes to the runtime unchecked).
func TestScheduleBrokenDriver(t *testing.T) {
	h := newHarness(t, withGPUs(failingSource{}))
	s := h.create(serving(), onGPUs("1"))
	h.start(s.ID)
	wantFailed(t, h.awaitStatus(s.ID, StatusFailed), FailureGPUUnavailable, PhaseSchedule, "Driver/library version mismatch")
	if _, err := h.m.StartWith(h.ctx(), s.ID, StartOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := h.awaitStatus(s.ID, StatusRunning); got.GPULease != nil {
		t.Errorf("forced start without an inventory has a lease %+v", got.GPULease)
	}
	if !strings.Contains(h.history(s.ID), "forced: GPUs passed as requested") {
		t.Errorf("history lacks the forced note:\n%s", h.history(s.ID))
	}
}

// An engine that still runs out of GPU memory fails with the GPU state
// read after the failure and a suggestion, and releases its lease.
func TestScheduleMemoryFailureExplained(t *testing.T) {
	h := newHarness(t, withGPUs(oneGPU()))
	s := h.create(fakeruntime.Script{Steps: []fakeruntime.Step{
		fakeruntime.Log("INFO 08-12 01:42:33 [weight_utils.py:296] Using model weights format ['*.safetensors']"),
		fakeruntime.Stderr("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has a total capacity of 79.19 GiB of which 212.81 MiB is free."),
		fakeruntime.Exit(1),
	}}, onGPUs("auto"))
	h.start(s.ID)
	got := h.awaitStatus(s.ID, StatusFailed)
	wantFailed(t, got, FailureExited, PhaseLoading, "CUDA out of memory", "GPU state after the failure: GPU 0", "suggestion: the weights do not fit")
	if got.GPULease != nil {
		t.Errorf("failed service keeps its lease %+v", got.GPULease)
	}
}
