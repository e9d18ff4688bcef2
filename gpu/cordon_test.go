package gpu

import (
	"strings"
	"testing"
)

// A cordoned GPU takes no new lease, even forced or named, and the refusal
// says which GPU is cordoned and why; a resume on it (a wake) still passes.
func TestPlaceSkipsCordonedGPU(t *testing.T) {
	snap := snapOf(gpu80(0, 0), gpu80(1, 0))
	cordoned := map[string]Cordon{uuidOf(0): {UUID: uuidOf(0), Index: 0, Reason: "fan failing"}}
	req := Request{ServiceID: "c", Selection: auto(), Estimate: est(18*gib, 0.9, 1, 1), Cordoned: cordoned}
	d, err := Place(snap, nil, req, PolicyPack)
	if err != nil || d.Lease.Indexes() != "1" {
		t.Fatalf("placed %v err %v, want GPU 1", d.Lease.Indexes(), err)
	}
	_, err = Place(snap, []Held{held("a", 1, 1)}, req, PolicyPack)
	r := refusal(t, err)
	if !strings.Contains(r.Message, "GPU 0 ("+uuidOf(0)[:12]+"…) is cordoned (fan failing)") || r.Live {
		t.Errorf("refusal %q live %v, want the cordon named and final", r.Message, r.Live)
	}
	forced := req
	forced.Force = true
	if d, err := Place(snap, []Held{held("a", 1, 1)}, forced, PolicyPack); err != nil || d.Lease.Indexes() != "1" {
		t.Errorf("forced: placed on %q err %v, want the held GPU 1, never the cordoned 0", d.Lease.Indexes(), err)
	}
	named := req
	named.Selection = Selection{Kind: SelectDevices, Devices: []string{"0"}}
	r = refusal(t, func() error { _, err := Place(snap, nil, named, PolicyPack); return err }())
	if !r.Cordoned || !strings.Contains(r.Suggestion, "gpu_uncordon 0") {
		t.Errorf("named refusal %+v", r)
	}
	named.Resume = true
	if _, err := Place(snap, nil, named, PolicyPack); err != nil {
		t.Errorf("resume on a cordoned GPU refused: %v", err)
	}
}
