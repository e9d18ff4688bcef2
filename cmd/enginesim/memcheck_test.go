package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
)

// TestMemoryFailuresFromFigures: without --sim-fail, each engine runs out
// of memory on its own when its flags and the memory knobs ask for more
// than the GPU has, with its own message and numbers.
func TestMemoryFailuresFromFigures(t *testing.T) {
	t.Parallel()
	gguf := testenv.MakeGGUF(t, "tiny", testenv.GGUFOptions{Layers: 22, TensorElements: 23 * 1024 * 1024})
	vllm := func(port int, extra ...string) []string {
		return append([]string{"serve", modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--sim-time-scale", fast}, extra...)
	}
	tests := []struct {
		name string
		args func(port int) []string
		line string
	}{
		{"vllm max len", func(p int) []string {
			return vllm(p, "--max-model-len", "10000000", "--sim-gpu-mem", "24GiB", "--sim-model-size", "16GiB")
		}, "ValueError: To serve at least one request with the models's max seq len (10000000), (1220.70 GiB KV cache is needed, which is larger than the available KV cache memory (3.21 GiB). Based on the available memory, the estimated maximum model length is "},
		{"vllm free memory", func(p int) []string { return vllm(p, "--sim-gpu-free", "40GiB") },
			"ValueError: Free memory on device (39.60/79.19 GiB) on startup is less than desired GPU memory utilization (0.9, 71.27 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."},
		{"vllm weights", func(p int) []string { return vllm(p, "--sim-model-size", "100GiB") },
			"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB."},
		{"sglang kv pool", func(p int) []string {
			return sglangArgs0(modelDir(t), p, "--mem-fraction-static", "0.85", "--sim-model-size", "70GiB")
		}, "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static. Current value: mem_fraction_static=0.85"},
		{"llama -ngl", func(p int) []string {
			return llamaArgs0(gguf, p, "--sim-model-size", "40GiB", "--sim-gpu-free", "20GiB")
		}, "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 40960.00 MiB on device 0: cudaMalloc failed: out of memory"},
		{"llama -c", func(p int) []string {
			return llamaArgs0(gguf, p, "-c", "10000000", "--sim-model-size", "4GiB", "--sim-gpu-free", "8GiB")
		}, "llama_init_from_model: failed to initialize the context: failed to allocate buffer for kv cache"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startSim(t, nil, tc.args(freePort(t))...)
			if code := r.wait(t, 10*time.Second); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if text := r.out.String() + r.err.String(); !strings.Contains(text, tc.line) {
				t.Errorf("lacks %q:\n%s", tc.line, text)
			}
		})
	}
}
