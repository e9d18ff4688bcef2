package gpu

import (
	"errors"
	"strings"
	"testing"

	"aima/errs"
	"aima/settings"
)

func est(perGPU int64, util, fraction float64, tp int) Estimate {
	return Estimate{PerGPUBytes: perGPU, Util: util, Fraction: fraction, TP: tp, OverheadBytes: 3 << 29,
		utilFlag: "--gpu-memory-utilization", maxLenFlag: "--max-model-len", tpFlag: "--tensor-parallel-size"}
}

func held(id string, frac float64, idx ...int) Held {
	l := Lease{Fraction: frac}
	for _, i := range idx {
		l.Devices = append(l.Devices, LeasedDevice{Index: i, UUID: uuidOf(i)})
	}
	return Held{ServiceID: id, Name: id, Lease: l}
}

func refusal(t *testing.T, err error) *Refusal {
	t.Helper()
	var r *Refusal
	if !errs.Is(err, errs.Conflict) || !errors.As(err, &r) {
		t.Fatalf("error %v, want a conflict refusal", err)
	}
	return r
}

func auto() Selection { return Selection{Kind: SelectAuto} }

func TestPlaceOneServicePerGPU(t *testing.T) {
	snap := snapOf(gpu80(0, 0), gpu80(1, 0))
	req := Request{ServiceID: "c", Selection: auto(), Estimate: est(18*gib, 0.9, 1, 1)}
	d, err := Place(snap, []Held{held("a", 1, 0)}, req, settings.GPUPolicyPack)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Lease.Indexes(); got != "1" {
		t.Errorf("placed on %s, want 1", got)
	}
	if !strings.Contains(d.Message, "GPU 1 ("+uuidOf(1)+", 80.0 GiB free) for ~18.0 GiB") {
		t.Errorf("message %q", d.Message)
	}
	_, err = Place(snap, []Held{held("a", 1, 0), held("b", 1, 1)}, req, settings.GPUPolicyPack)
	r := refusal(t, err)
	if !r.Held || !strings.Contains(r.Message, "held by service a") || !strings.Contains(r.Message, "held by service b") || !strings.Contains(r.Message, "GiB") {
		t.Errorf("refusal %q", r.Error())
	}
}

func TestPlaceSharesByDeclaredFractions(t *testing.T) {
	snap := snapOf(gpu80(0, 0))
	half := Request{ServiceID: "b", Selection: auto(), Estimate: est(10*gib, 0.45, 0.45, 1)}
	if _, err := Place(snap, []Held{held("a", 0.45, 0)}, half, settings.GPUPolicyPack); err != nil {
		t.Errorf("0.45 + 0.45: %v", err)
	}
	_, err := Place(snap, []Held{held("a", 0.9, 0)}, half, settings.GPUPolicyPack)
	r := refusal(t, err)
	if !r.Held || !strings.Contains(r.Suggestion, "0.10 is left") {
		t.Errorf("0.9 + 0.45: %q", r.Error())
	}
	// The memory rule still applies to a share: the first service took
	// 60 GiB, so 0.45 × 80 = 36 GiB is not free.
	snap = snapOf(gpu80(0, 60))
	r = refusal(t, func() error {
		_, err := Place(snap, []Held{held("a", 0.45, 0)}, half, settings.GPUPolicyPack)
		return err
	}())
	if !strings.Contains(r.Message, "needs 36.0 GiB free") || !strings.Contains(r.Message, "20.0 GiB") {
		t.Errorf("free-memory refusal %q", r.Error())
	}
}

func TestPlaceRefusesTooLargeWithSuggestion(t *testing.T) {
	snap := snapOf(gpu80(0, 0), gpu80(1, 0))
	e := mustEstimate(t, "testdata/models/llama-3-8b-instruct", "hf", ProfileFor("vllm"), EngineArgs{TP: 1, MaxModelLen: 524288})
	_, err := Place(snap, nil, Request{ServiceID: "x", Selection: auto(), Estimate: e}, settings.GPUPolicyPack)
	r := refusal(t, err)
	if r.Held || !strings.Contains(r.Message, "allows 72.0 GiB") || !strings.Contains(r.Message, "GiB per GPU") {
		t.Errorf("refusal %q", r.Error())
	}
	if !strings.Contains(r.Suggestion, "lower --max-model-len to") || len(r.SuggestedArgs) == 0 || !strings.HasPrefix(r.SuggestedArgs[0], "--max-model-len=") {
		t.Errorf("suggestion %q %v", r.Suggestion, r.SuggestedArgs)
	}
	// The suggested length does fit.
	var l int
	_, _ = fmtSscan(r.SuggestedArgs[0], &l)
	e2 := mustEstimate(t, "testdata/models/llama-3-8b-instruct", "hf", ProfileFor("vllm"), EngineArgs{TP: 1, MaxModelLen: l})
	if _, err := Place(snap, nil, Request{ServiceID: "x", Selection: auto(), Estimate: e2}, settings.GPUPolicyPack); err != nil {
		t.Errorf("suggested --max-model-len=%d does not fit: %v", l, err)
	}
}

func TestPlaceTensorParallel(t *testing.T) {
	snap := snapOf(gpu80(0, 0), gpu80(1, 0))
	d, err := Place(snap, nil, Request{Selection: auto(), Estimate: est(gib, 0.9, 1, 2)}, settings.GPUPolicyPack)
	if err != nil || d.Lease.Indexes() != "0,1" {
		t.Errorf("TP 2: %v %v", d.Lease.Indexes(), err)
	}
	_, err = Place(snap, nil, Request{Selection: auto(), Estimate: est(gib, 0.9, 1, 4)}, settings.GPUPolicyPack)
	if r := refusal(t, err); !strings.Contains(r.Message, "needs 4 GPUs; this host has 2") {
		t.Errorf("%q", r.Message)
	}
	_, err = Place(snap, nil, Request{Selection: Selection{Kind: SelectCount, Count: 1}, Estimate: est(gib, 0.9, 1, 2)}, settings.GPUPolicyPack)
	if r := refusal(t, err); !strings.Contains(r.Message, "tensor parallel size 2 needs 2 GPUs; the service asks for 1") {
		t.Errorf("%q", r.Message)
	}
}

func TestPlacePackAndSpread(t *testing.T) {
	// GPU 0 has 30 GiB taken by a foreign process, GPU 1 is empty.
	snap := snapOf(gpu80(0, 30), gpu80(1, 0))
	req := Request{Selection: Selection{Kind: SelectCount, Count: 1}, Estimate: est(10*gib, 0, 1, 1)}
	pack, err := Place(snap, nil, req, settings.GPUPolicyPack)
	if err != nil || pack.Lease.Indexes() != "0" {
		t.Errorf("pack chose %s (%v)", pack.Lease.Indexes(), err)
	}
	spread, err := Place(snap, nil, req, settings.GPUPolicySpread)
	if err != nil || spread.Lease.Indexes() != "1" {
		t.Errorf("spread chose %s (%v)", spread.Lease.Indexes(), err)
	}
}

func TestPlaceNamedDevicesAndForce(t *testing.T) {
	snap := snapOf(gpu80(0, 0), gpu80(1, 0))
	byUUID := Request{Selection: Selection{Kind: SelectDevices, Devices: []string{uuidOf(1)}}, Estimate: est(gib, 0.9, 1, 1)}
	if d, err := Place(snap, nil, byUUID, settings.GPUPolicyPack); err != nil || d.Lease.Indexes() != "1" {
		t.Errorf("device=UUID: %v %v", d.Lease, err)
	}
	held0 := []Held{held("svc-a", 0.9, 0)}
	named := Request{Selection: Selection{Kind: SelectDevices, Devices: []string{"0"}}, Estimate: est(gib, 0.9, 1, 1)}
	r := refusal(t, func() error { _, err := Place(snap, held0, named, settings.GPUPolicyPack); return err }())
	if !r.Held || !strings.Contains(r.Message, "GPU 0 (") || !strings.Contains(r.Message, "svc-a") {
		t.Errorf("%q", r.Message)
	}
	named.Force = true
	d, err := Place(snap, held0, named, settings.GPUPolicyPack)
	if err != nil || !d.Lease.Forced || !strings.Contains(d.Message, "forced") {
		t.Errorf("force: %+v %v", d, err)
	}
	_, err = Place(snap, nil, Request{Selection: Selection{Kind: SelectDevices, Devices: []string{"7"}}, Estimate: est(gib, 0.9, 1, 1)}, settings.GPUPolicyPack)
	if r := refusal(t, err); !strings.Contains(r.Message, "GPU 7 does not exist") {
		t.Errorf("%q", r.Message)
	}
}

func TestPlaceSkipsMIGAndHandlesUnknownMemory(t *testing.T) {
	mig := gpu80(0, 0)
	mig.MIGMode = "enabled"
	snap := snapOf(mig, gpu80(1, 0))
	d, err := Place(snap, nil, Request{Selection: auto(), Estimate: est(gib, 0.9, 1, 1)}, settings.GPUPolicyPack)
	if err != nil || d.Lease.Indexes() != "1" {
		t.Errorf("MIG: %v %v", d.Lease.Indexes(), err)
	}
	gb10 := Device{Index: 0, UUID: uuidOf(0), Name: "NVIDIA GB10"}
	d, err = Place(snapOf(gb10), nil, Request{Selection: auto(), Estimate: est(200*gib, 0.9, 1, 1)}, settings.GPUPolicyPack)
	if err != nil || !strings.Contains(d.Message, "memory not reported") {
		t.Errorf("unknown memory: %+v %v", d, err)
	}
}

func TestPlaceFreeMemorySuggestion(t *testing.T) {
	snap := snapOf(gpu80(0, 44))
	snap.Devices[0].Processes = []Process{{PID: 7, Name: "python", UsedMemoryBytes: ptr(44 * gib)}}
	_, err := Place(snap, nil, Request{Selection: auto(), Estimate: est(10*gib, 0.9, 1, 1)}, settings.GPUPolicyPack)
	r := refusal(t, err)
	if !strings.Contains(r.Message, "needs 72.0 GiB free") || !strings.Contains(r.Message, "36.0 GiB is free") {
		t.Errorf("%q", r.Message)
	}
	if !strings.Contains(r.Suggestion, "lower --gpu-memory-utilization to 0.44") || !strings.Contains(r.Suggestion, "pid 7 python") {
		t.Errorf("%q", r.Suggestion)
	}
}

func TestSelection(t *testing.T) {
	for in, want := range map[string]string{"": "none", "none": "none", "all": "all", "auto": "auto", "2": "2", "0": "none",
		"device=0,1": "device=0,1", "0,1": "device=0,1", "GPU-abc-1": "device=GPU-abc-1", "device=GPU-a1,3": "device=GPU-a1,3"} {
		s, err := ParseSelection(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseSelection(%q) = %q, %v; want %q", in, s, err, want)
		}
	}
	for _, bad := range []string{"x", "device=", "1,,2", "999", "device=0;rm"} {
		if _, err := ParseSelection(bad); err == nil {
			t.Errorf("ParseSelection(%q) accepted", bad)
		}
	}
}

func TestCheckVisibleEnv(t *testing.T) {
	dev := Selection{Kind: SelectDevices, Devices: []string{"GPU-a", "GPU-b"}}
	ok := []struct {
		sel Selection
		env string
	}{
		{dev, "NVIDIA_VISIBLE_DEVICES=GPU-b,GPU-a"}, {dev, "CUDA_VISIBLE_DEVICES=1,0"}, {dev, "CUDA_VISIBLE_DEVICES=GPU-a"},
		{Selection{Kind: SelectCount, Count: 2}, "CUDA_VISIBLE_DEVICES=0,1"}, {Selection{Kind: SelectNone}, "NVIDIA_VISIBLE_DEVICES=void"},
		{auto(), "HF_TOKEN=x"},
	}
	for _, c := range ok {
		if err := CheckVisibleEnv(c.sel, []string{c.env}); err != nil {
			t.Errorf("%s with %s: %v", c.env, c.sel, err)
		}
	}
	bad := []struct {
		sel Selection
		env string
	}{
		{dev, "NVIDIA_VISIBLE_DEVICES=GPU-a"}, {auto(), "NVIDIA_VISIBLE_DEVICES=0"}, {dev, "CUDA_VISIBLE_DEVICES=2"},
		{Selection{Kind: SelectCount, Count: 1}, "CUDA_VISIBLE_DEVICES=1"}, {Selection{Kind: SelectNone}, "CUDA_VISIBLE_DEVICES=0"},
		{dev, "CUDA_VISIBLE_DEVICES=GPU-z"},
	}
	for _, c := range bad {
		err := CheckVisibleEnv(c.sel, []string{c.env})
		if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != "env" {
			t.Errorf("%s with %s: %v, want invalid env", c.env, c.sel, err)
		}
	}
}

// The engines' memory failure lines are recognised by the engine catalog
// (engines.Engine.Diagnose); the GPUs' state after one is StateText.
func TestStateText(t *testing.T) {
	snap := snapOf(gpu80(0, 60), gpu80(1, 0))
	snap.Devices[0].Processes = []Process{{PID: 9, Name: "python3", UsedMemoryBytes: ptr(60 * gib)}}
	if s := StateText(snap, []string{uuidOf(0)}); !strings.Contains(s, "GPU 0") || !strings.Contains(s, "20.0/80.0 GiB free") || !strings.Contains(s, "pid 9 python3, 60.0 GiB") || strings.Contains(s, "GPU 1") {
		t.Errorf("state %q", s)
	}
}

// A sleeping holder's lease is dormant: others may take its GPU; its own
// wake (Resume) checks only the other leases, not free memory.
func TestPlaceDormantAndResume(t *testing.T) {
	snap := snapOf(gpu80(0, 70)) // the sleeping engine still holds some memory
	sleeping := held("a", 0.9, 0)
	sleeping.Dormant = true
	if _, err := Place(snap, []Held{sleeping}, Request{ServiceID: "b", Selection: auto(), Estimate: est(gib, 0, 1, 1)}, settings.GPUPolicyPack); err != nil {
		t.Errorf("beside a sleeping holder: %v", err)
	}
	wake := Request{ServiceID: "a", Selection: Selection{Kind: SelectDevices, Devices: []string{uuidOf(0)}}, Estimate: est(gib, 0.9, 0.9, 1), Resume: true}
	if _, err := Place(snap, nil, wake, settings.GPUPolicyPack); err != nil {
		t.Errorf("wake on its own GPU: %v", err)
	}
	if _, err := Place(snap, []Held{held("b", 1, 0)}, wake, settings.GPUPolicyPack); !errs.Is(err, errs.Conflict) {
		t.Errorf("wake onto a GPU another service holds: %v", err)
	}
}

// One physical GPU named twice (its index and its UUID, an index with a
// leading zero, a UUID in other letters) is refused, never leased twice.
func TestOneGPUNamedTwiceRefused(t *testing.T) {
	for _, bad := range []string{"device=0,0", "device=0,00", "device=GPU-abc,gpu-ABC"} {
		if s, err := ParseSelection(bad); err == nil {
			t.Errorf("ParseSelection(%q) accepted as %v", bad, s)
		}
	}
	if s, err := ParseSelection("device=01"); err != nil || s.String() != "device=1" {
		t.Errorf("device=01: %v %v", s, err)
	}
	snap := snapOf(gpu80(0, 0), gpu80(1, 0))
	for _, ids := range [][]string{{"0", uuidOf(0)}, {strings.ToUpper(uuidOf(1)), "1"}} {
		sel, err := ParseSelection("device=" + strings.Join(ids, ","))
		if err != nil {
			t.Fatal(err)
		}
		d, err := Place(snap, nil, Request{Selection: sel, Estimate: est(gib, 0.9, 1, 2)}, settings.GPUPolicyPack)
		if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != "gpus" || !strings.Contains(err.Error(), "are the same GPU") {
			t.Errorf("%v: lease %+v, error %v; want invalid_argument on gpus", ids, d.Lease, err)
		}
	}
}
