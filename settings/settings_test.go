package settings

import (
	"strings"
	"testing"

	"aima/errs"
)

func TestParseGPUPolicy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]GPUPolicy{"": GPUPolicyPack, "pack": GPUPolicyPack, "spread": GPUPolicySpread} {
		if got, err := ParseGPUPolicy(in); err != nil || got != want {
			t.Errorf("ParseGPUPolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseGPUPolicy("random"); err == nil || !strings.Contains(err.Error(), "want pack or spread") {
		t.Errorf("ParseGPUPolicy(random) = %v", err)
	}
}

func TestParseOnOOM(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]OnOOM{"": OnOOMFail, "fail": OnOOMFail, "retune": OnOOMRetune} {
		if got, err := ParseOnOOM(in); err != nil || got != want {
			t.Errorf("ParseOnOOM(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// A long value (it may come from a request) is quoted in part, cut on
	// a rune boundary.
	_, err := ParseOnOOM(strings.Repeat("a", 39) + "é" + strings.Repeat("b", 100))
	if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != "on_oom" {
		t.Fatalf("ParseOnOOM(long) = %v, want invalid_argument on on_oom", err)
	}
	if msg := err.Error(); !strings.Contains(msg, strings.Repeat("a", 39)+"…") || strings.Contains(msg, "b") {
		t.Errorf("long value quoted as %q", msg)
	}
}
