package engines

import (
	"strings"
	"testing"
)

// The lines below are verbatim from the engines' logs (engines.md §1.3,
// §3.1 and §4.5), with the engines' own prefixes.

func milestones(e Engine, lines []string) []string {
	var out []string
	for _, l := range lines {
		for _, ms := range e.Milestones {
			if idx := ms.Pattern.FindStringSubmatchIndex(l); idx != nil {
				out = append(out, string(ms.Pattern.ExpandString(nil, ms.Message, l, idx)))
				break
			}
		}
	}
	return out
}

func TestMilestonesAndReadyLinePerEngine(t *testing.T) {
	t.Parallel()
	cat, _ := NewCatalog(nil)
	tests := []struct {
		engine string
		lines  []string
		want   []string
		ready  string // the line that must match ReadyLine
	}{
		{"sglang", []string{
			"[2025-01-01 10:00:00 TP0] Init torch distributed ends. elapsed=0.53 s, mem usage=0.09 GB",
			"[2025-01-01 10:00:00 TP0] Load weight begin. avail mem=50.69 GB",
			"Loading safetensors checkpoint shards:  50% Completed | 1/2 [00:01<00:01,  1.00it/s]",
			"[2025-01-01 10:00:05 TP0] Load weight end. type=Qwen3ForCausalLM, dtype=torch.bfloat16, avail mem=16.00 GB, mem usage=7.08 GB.",
			"[2025-01-01 10:00:06 TP0] KV Cache is allocated. #tokens: 298447, K size: 5.69 GB, V size: 5.69 GB",
			"[2025-01-01 10:00:06 TP0] Memory pool end. avail mem=2.43 GB",
			"[2025-01-01 10:00:06 TP0] Capture cuda graph begin. This can take up to several minutes. avail mem=2.98 GB",
			"[2025-01-01 10:00:13 TP0] Capture cuda graph end. Time elapsed: 6.57 s",
			"[2025-01-01 10:00:14] INFO:     Uvicorn running on http://127.0.0.1:30000 (Press CTRL+C to quit)",
			"[2025-01-01 10:00:16] The server is fired up and ready to roll!",
		}, []string{"loading weights (50.69 GB free)", "weights loaded: Qwen3ForCausalLM, 7.08 GB", "KV cache allocated: 298447 tokens",
			"CUDA graphs captured in 6.57 s", "HTTP server listening; warming up", "server fired up"},
			"The server is fired up and ready to roll!"},
		{"sglang", []string{"[2024-12-01 10:00:05 TP0] Load weight end. elapsed=5.43 s"}, []string{"weights loaded in 5.43 s"}, ""},
		{"llamacpp", []string{
			"main: HTTP server is listening, hostname: 127.0.0.1, port: 8080, http threads: 11",
			"main: loading model",
			"srv    load_model: loading model '/models/7B/ggml-model-q4_0.gguf'",
			"llama_model_loader: loaded meta data with 36 key-value pairs and 197 tensors from /models/x.gguf (version GGUF V3 (latest))",
			"print_info: arch             = qwen3",
			"load_tensors: loading model tensors, this can take a while... (mmap = true)",
			"load_tensors: offloaded 62/62 layers to GPU",
			"load_tensors:        CUDA0 model buffer size = 48928.09 MiB",
			"llama_kv_cache: size =  512.00 MiB (  4096 cells,  32 layers,  1/1 seqs), K (f16):  256.00 MiB, V (f16):  256.00 MiB",
			"main: model loaded",
			"main: server is listening on http://127.0.0.1:8080 - starting the main loop",
		}, []string{"HTTP server listening; loading the model", "GGUF header read: 36 keys, 197 tensors", "architecture qwen3",
			"62/62 layers offloaded to the GPU", "weights on the GPU: 48928.09 MiB", "KV cache 512.00 MiB for 4096 tokens", "model loaded"},
			"main: server is listening on http://127.0.0.1:8080 - starting the main loop"},
		{"llamacpp", []string{"srv  llama_server: model loaded", "srv  llama_server: server is listening on http://0.0.0.0:8080"},
			[]string{"model loaded"}, "srv  llama_server: server is listening on http://0.0.0.0:8080"},
	}
	for _, tc := range tests {
		e, _ := cat.Get(tc.engine)
		got := milestones(e, tc.lines)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s milestones:\n got %q\nwant %q", tc.engine, got, tc.want)
		}
		if tc.ready != "" && !e.ReadyLine.MatchString(tc.ready) {
			t.Errorf("%s: ready line %q not recognised", tc.engine, tc.ready)
		}
	}
	// The listening line that llama-server prints before it loads is not readiness.
	l, _ := cat.Get("llamacpp")
	if l.ReadyLine.MatchString("main: HTTP server is listening, hostname: 127.0.0.1, port: 8080, http threads: 11") {
		t.Error("llama-server's early listening line taken for readiness")
	}
	if s, _ := cat.Get("sglang"); !s.ReadyNeedsLine || s.ReadyLine.MatchString("[2025-01-01 10:00:14] INFO:     Uvicorn running on http://127.0.0.1:30000") {
		t.Error("SGLang is ready only after its warmup: its uvicorn line is not readiness")
	}
}

func TestDiagnosePerEngine(t *testing.T) {
	t.Parallel()
	cat, _ := NewCatalog(nil)
	tests := []struct {
		name, engine string
		lines        []string
		want         string // the line Diagnose picks
		memory, port bool
		suggests     string
	}{
		{"sglang kv pool", "sglang", []string{
			"[2025-01-01 10:00:05 TP0] Load weight end. type=Qwen3ForCausalLM, dtype=torch.bfloat16, avail mem=16.00 GB, mem usage=7.08 GB.",
			"[2025-01-01 10:00:05 TP0] Scheduler hit an exception: Traceback (most recent call last):",
			"    raise RuntimeError(",
			"RuntimeError: Not enough memory. Please try to increase --mem-fraction-static.",
			"[2025-01-01 10:00:05] Received sigquit from a child process. It usually means the child failed.",
		}, "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static.", true, false, "--mem-fraction-static"},
		{"sglang cuda oom", "sglang", []string{
			"[2025-01-01 10:00:05 TP0] Scheduler hit an exception: Traceback (most recent call last):",
			"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 24.00 MiB. GPU 1 has a total capacity of 47.37 GiB of which 4.31 MiB is free...",
			"[2025-01-01 10:00:05] Received sigquit from a child process. It usually means the child failed.",
		}, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 24.00 MiB. GPU 1 has a total capacity of 47.37 GiB of which 4.31 MiB is free...", true, false, "--tp-size"},
		{"sglang port", "sglang", []string{
			"[2025-01-01 10:00:14] INFO:     Application startup complete.",
			"[2025-01-01 10:00:14] ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 30000): address already in use",
		}, "[2025-01-01 10:00:14] ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 30000): address already in use", false, true, ""},
		{"llama weights oom", "llamacpp", []string{
			"load_tensors: offloaded 62/62 layers to GPU",
			"ggml_backend_cuda_buffer_type_alloc_buffer: allocating 144817.04 MiB on device 0: cudaMalloc failed: out of memory",
			"alloc_tensor_range: failed to allocate CUDA0 buffer of size 151851674624",
			"llama_model_load: error loading model: unable to allocate CUDA0 buffer",
			"llama_model_load_from_file_impl: failed to load model",
			"common_init_from_params: failed to load model '/models/x.gguf'",
			"srv    load_model: failed to load model, '/models/x.gguf'",
			"main: exiting due to model loading error",
		}, "llama_model_load: error loading model: unable to allocate CUDA0 buffer", true, false, "-ngl"},
		{"llama kv oom", "llamacpp", []string{
			"ggml_backend_cuda_buffer_type_alloc_buffer: allocating 8192.00 MiB on device 0: cudaMalloc failed: out of memory",
			"llama_init_from_model: failed to initialize the context: failed to allocate buffer for kv cache",
			"srv  llama_server: exiting due to model loading error",
		}, "llama_init_from_model: failed to initialize the context: failed to allocate buffer for kv cache", true, false, "-c"},
		{"llama missing file", "llamacpp", []string{
			"gguf_init_from_file: failed to open GGUF file '/models/foo.gguf' (No such file or directory)",
			"llama_model_load: error loading model: llama_model_loader: failed to load model from /models/foo.gguf",
			"main: exiting due to model loading error",
		}, "gguf_init_from_file: failed to open GGUF file '/models/foo.gguf' (No such file or directory)", false, false, "-m"},
		{"llama bad magic", "llamacpp", []string{
			"gguf_init_from_file_impl: invalid magic characters: 'xxxx', expected 'GGUF'",
			"main: exiting due to model loading error",
		}, "gguf_init_from_file_impl: invalid magic characters: 'xxxx', expected 'GGUF'", false, false, "GGUF"},
		{"llama unknown arch", "llamacpp", []string{
			"llama_model_load: error loading model: error loading model architecture: unknown model architecture: 'gemma4'",
			"main: exiting due to model loading error",
		}, "llama_model_load: error loading model: error loading model architecture: unknown model architecture: 'gemma4'", false, false, "newer"},
		{"llama port", "llamacpp", []string{
			"srv          start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080",
			"srv  llama_server: exiting due to HTTP server error",
		}, "srv          start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080", false, true, ""},
		{"vllm kv", "vllm", []string{
			"(EngineCore_DP0 pid=1) ERROR 10-25 13:08:43 [core.py:708]     raise ValueError(\"No available memory for the cache blocks. \"",
			"(EngineCore_DP0 pid=1) ERROR 10-25 13:08:43 [core.py:708] ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
			"RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
		}, "(EngineCore_DP0 pid=1) ERROR 10-25 13:08:43 [core.py:708] ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.", true, false, "--max-model-len"},
		{"vllm free memory", "vllm", []string{
			"ValueError: Free memory on device (59.32/79.15 GiB) on startup is less than desired GPU memory utilization (0.9, 71.24 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.",
		}, "ValueError: Free memory on device (59.32/79.15 GiB) on startup is less than desired GPU memory utilization (0.9, 71.24 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.", true, false, "--gpu-memory-utilization"},
		{"vllm max len", "vllm", []string{
			"ValueError: To serve at least one request with the models's max seq len (131072), (4.11 GiB KV cache is needed, which is larger than the available KV cache memory (4.0 GiB).",
		}, "ValueError: To serve at least one request with the models's max seq len (131072), (4.11 GiB KV cache is needed, which is larger than the available KV cache memory (4.0 GiB).", true, false, "--max-model-len"},
	}
	for _, tc := range tests {
		e, _ := cat.Get(tc.engine)
		line, rule := e.Diagnose(tc.lines)
		if rule == nil || line != tc.want || rule.Memory != tc.memory || rule.PortInUse != tc.port || !strings.Contains(rule.Suggestion, tc.suggests) {
			t.Errorf("%s: Diagnose = %q %+v, want %q (memory %v, port %v, suggestion with %q)", tc.name, line, rule, tc.want, tc.memory, tc.port, tc.suggests)
		}
	}
	v, _ := cat.Get("vllm")
	if _, rule := v.Diagnose([]string{"ValueError: Invalid repository ID or local directory specified: '/m'."}); rule != nil {
		t.Errorf("a missing vLLM model is no memory failure: %+v", rule)
	}
	for _, typ := range []string{"vllm", "sglang"} {
		if e, _ := cat.Get(typ); !e.CanSleep || e.Sleep == nil {
			t.Errorf("%s can sleep", typ)
		}
	}
	if l, _ := cat.Get("llamacpp"); l.CanSleep || l.Sleep != nil {
		t.Error("llama.cpp has no sleep mode")
	}
}
