package gpu

import (
	"slices"
	"strings"
	"testing"
)

// The engines' own lines, as engines.md quotes them (vLLM §4.4 table,
// SGLang and llama.cpp §4.5), each with the retune it must lead to.
func TestPlanOOMOnEngineLines(t *testing.T) {
	cases := []struct {
		name   string
		c      OOMContext
		lines  []string
		cause  OOMCause
		adjust *Adjustment // nil: not retried
		why    string      // in Adjust.Why or Reason
	}{
		{"vllm v1 max len", OOMContext{Engine: "vllm", Args: []string{"--max-model-len", "131072"}, FreeShare: -1},
			[]string{"(EngineCore_DP0 pid=223840) ERROR 10-25 13:08:43 [core.py:708] ValueError: To serve at least one request with the models's max seq len (131072), (4.11 GiB KV cache is needed, which is larger than the available KV cache memory (4.0 GiB). Based on the available memory, the estimated maximum model length is 127776. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."},
			OOMMaxLen, &Adjustment{Flag: "--max-model-len", From: "131072", To: "127776"}, "estimated the longest context that fits at 127776"},
		{"vllm v0 max len", OOMContext{Engine: "vllm", FreeShare: -1},
			[]string{"ValueError: The model's max seq len (4096) is larger than the maximum number of tokens that can be stored in KV cache (3664). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."},
			OOMMaxLen, &Adjustment{Flag: "--max-model-len", From: "4096", To: "3664"}, "holds 3664 tokens"},
		{"vllm free below share", OOMContext{Engine: "vllm", FreeShare: -1},
			[]string{"ValueError: Free memory on device (59.32/79.15 GiB) on startup is less than desired GPU memory utilization (0.9, 71.24 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."},
			OOMFreeBelowShare, &Adjustment{Flag: "--gpu-memory-utilization", From: "0.9", To: "0.73"}, "59.32 of 79.15 GiB free"},
		{"vllm no cache blocks", OOMContext{Engine: "vllm", Args: []string{"--gpu-memory-utilization=0.5"}, FreeShare: 0.97},
			[]string{"(EngineCore_DP0 pid=223840) ERROR 10-25 13:08:43 [core.py:708] ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."},
			OOMKVPool, &Adjustment{Flag: "--gpu-memory-utilization", From: "0.5", To: "0.55"}, "no memory left for KV cache blocks"},
		{"vllm no cache blocks at the ceiling", OOMContext{Engine: "vllm", Args: []string{"--gpu-memory-utilization=0.95"}, FreeShare: 0.97},
			[]string{"ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."},
			OOMKVPool, nil, "no larger share fits"},
		{"sglang not enough memory", OOMContext{Engine: "sglang", FreeShare: 0.9},
			[]string{"[2026-08-19 14:58:41 TP0] Scheduler hit an exception: Traceback (most recent call last):", "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static. Current value: mem_fraction_static=0.8"},
			OOMKVPool, &Adjustment{Flag: "--mem-fraction-static", From: "0.8", To: "0.85"}, "mem_fraction_static"},
		{"sglang not enough memory, older wording", OOMContext{Engine: "sglang", FreeShare: -1},
			[]string{"RuntimeError: Not enough memory. Please try to increase --mem-fraction-static."},
			OOMKVPool, &Adjustment{Flag: "--mem-fraction-static", From: "0.88", To: "0.93"}, "mem_fraction_static"},
		{"sglang weights", OOMContext{Engine: "sglang", FreeShare: -1},
			[]string{"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 24.00 MiB. GPU 1 has a total capacity of 47.37 GiB of which 4.31 MiB is free."},
			OOMWeights, nil, "tensor-parallel-size"},
		{"llama.cpp kv", OOMContext{Engine: "llamacpp", Args: []string{"-c", "32768"}, FreeShare: -1},
			[]string{"llama_init_from_model: failed to initialize the context: failed to allocate buffer for kv cache"},
			OOMMaxLen, &Adjustment{Flag: "-c", From: "32768", To: "16384"}, "32768-token context"},
		{"llama.cpp weights, layers known", OOMContext{Engine: "llamacpp", FreeShare: 0.5, FreeMiB: 40000},
			[]string{"load_tensors: offloaded 62/62 layers to GPU",
				"ggml_backend_cuda_buffer_type_alloc_buffer: allocating 144817.04 MiB on device 0: cudaMalloc failed: out of memory",
				"alloc_tensor_range: failed to allocate CUDA0 buffer of size 151851674624",
				"llama_model_load: error loading model: unable to allocate CUDA0 buffer"},
			OOMWeights, &Adjustment{Flag: "-ngl", From: "62", To: "15"}, "15 layers fit"},
		{"llama.cpp weights, layers unknown", OOMContext{Engine: "llamacpp", FreeShare: -1, FreeMiB: -1},
			[]string{"ggml_backend_cuda_buffer_type_alloc_buffer: allocating 144817.04 MiB on device 0: cudaMalloc failed: out of memory"},
			OOMWeights, nil, "offload fewer layers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanOOM(tc.c, tc.lines)
			if p.Cause != tc.cause {
				t.Errorf("cause %q, want %q", p.Cause, tc.cause)
			}
			switch {
			case tc.adjust == nil && p.Adjust != nil:
				t.Errorf("retuned %+v, want no retry", *p.Adjust)
			case tc.adjust == nil:
				if !strings.Contains(p.Reason, tc.why) {
					t.Errorf("reason %q lacks %q", p.Reason, tc.why)
				}
			case p.Adjust == nil:
				t.Errorf("not retuned (%s), want %+v", p.Reason, *tc.adjust)
			default:
				a := *p.Adjust
				if a.Flag != tc.adjust.Flag || a.From != tc.adjust.From || a.To != tc.adjust.To || a.Cause != tc.cause {
					t.Errorf("adjustment %+v, want %s %s → %s", a, tc.adjust.Flag, tc.adjust.From, tc.adjust.To)
				}
				if !strings.Contains(a.Why, tc.why) {
					t.Errorf("why %q lacks %q", a.Why, tc.why)
				}
			}
		})
	}
}

func TestWithFlag(t *testing.T) {
	got := WithFlag([]string{"--max-model-len", "8192", "--dtype=auto", "--max-model-len=4096"}, "--max-model-len", "2048")
	if want := []string{"--dtype=auto", "--max-model-len=2048"}; !slices.Equal(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}
