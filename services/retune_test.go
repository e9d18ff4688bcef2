package services

import (
	"slices"
	"strings"
	"testing"

	"aima/runtime"
	"aima/runtime/fakeruntime"
)

// vllmMaxLenLine is vLLM V1's own line when the KV cache cannot hold
// --max-model-len (engines.md §4.4).
const vllmMaxLenLine = "ValueError: To serve at least one request with the models's max seq len (131072), (4.11 GiB KV cache is needed, which is larger than the available KV cache memory (4.0 GiB). Based on the available memory, the estimated maximum model length is 127776. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."

// With on_oom retune, a start whose engine says its KV cache cannot hold
// the context is tried again with the engine's own estimate and ends
// running, the adjustment on the record and in the events; without it the
// start fails as before.
func TestRetuneAfterKVCacheFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	failing := fakeruntime.Script{Steps: []fakeruntime.Step{
		fakeruntime.Log("loading"), fakeruntime.Stderr("(EngineCore_DP0 pid=1) ERROR 10-25 13:08:43 [core.py:708] " + vllmMaxLenLine), fakeruntime.Exit(1),
	}}
	s := h.create(failing, func(c *CreateSpec) { c.OnOOM = OnOOMRetune; c.Args = []string{"--max-model-len", "131072"} })
	h.fr.SetScript(map[string]string{runtime.LabelService: s.ID, runtime.LabelRun: "2"}, serving())
	h.start(s.ID)
	got := h.awaitStatus(s.ID, StatusRunning)
	if len(got.Retunes) != 1 || got.Retunes[0].Flag != "--max-model-len" || got.Retunes[0].From != "131072" || got.Retunes[0].To != "127776" || got.Retunes[0].Run != 1 {
		t.Fatalf("retunes %+v", got.Retunes)
	}
	if !slices.Equal(got.Args, []string{"--max-model-len=127776"}) || got.Run != 2 {
		t.Errorf("args %q run %d, want the tuned arg on run 2", got.Args, got.Run)
	}
	if hist := h.history(s.ID); !strings.Contains(hist, "retrying with --max-model-len 127776 instead of 131072") {
		t.Errorf("events lack the retune:\n%s", hist)
	}

	plain := h.create(failing, func(c *CreateSpec) { c.Args = []string{"--max-model-len", "131072"} })
	h.start(plain.ID)
	wantFailed(t, h.awaitStatus(plain.ID, StatusFailed), FailureExited, PhaseLoading, "estimated maximum model length is 127776")
}

// Weights that do not fit are never retried, even with on_oom retune, and
// the reason says why; a memory failure that keeps coming back is retried
// at most twice.
func TestRetuneLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	weights := h.create(fakeruntime.Script{Steps: []fakeruntime.Step{
		fakeruntime.Log("loading"), fakeruntime.Stderr("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 24.00 MiB. GPU 0 has a total capacity of 47.37 GiB of which 4.31 MiB is free."), fakeruntime.Exit(1),
	}}, func(c *CreateSpec) { c.OnOOM = OnOOMRetune })
	h.start(weights.ID)
	got := h.awaitStatus(weights.ID, StatusFailed)
	if len(got.Retunes) != 0 || got.Run != 1 || !strings.Contains(got.Reason, "not retuned: the weights do not fit") {
		t.Errorf("weights: retunes %+v run %d reason %q", got.Retunes, got.Run, got.Reason)
	}

	again := h.create(fakeruntime.Script{Steps: []fakeruntime.Step{
		fakeruntime.Log("loading"), fakeruntime.Stderr("ValueError: The model's max seq len (4096) is larger than the maximum number of tokens that can be stored in KV cache (3664)."), fakeruntime.Exit(1),
	}}, func(c *CreateSpec) { c.OnOOM = OnOOMRetune })
	h.start(again.ID)
	got = h.awaitStatus(again.ID, StatusFailed)
	if len(got.Retunes) != 2 || got.Run != 3 {
		t.Errorf("retunes %+v run %d (reason %q), want two retunes then the failure\n%s", got.Retunes, got.Run, got.Reason, h.history(again.ID))
	}
}

// The config's on_oom is the default of services created without one;
// fail opts out of it, and anything else is refused.
func TestOnOOMDefault(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.OnOOM = OnOOMRetune })
	if s := h.create(serving(), nil); s.OnOOM != OnOOMRetune {
		t.Errorf("default on_oom %q, want retune", s.OnOOM)
	}
	if s := h.create(serving(), func(c *CreateSpec) { c.OnOOM = "fail" }); s.OnOOM != OnOOMFail {
		t.Errorf("on_oom fail recorded as %q", s.OnOOM)
	}
	if _, err := h.m.Create(h.ctx(), CreateSpec{ModelID: "org/tiny", EngineType: "vllm", OnOOM: "retry"}); err == nil {
		t.Error("on_oom retry accepted")
	}
}
