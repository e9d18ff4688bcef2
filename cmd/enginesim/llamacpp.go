package main

import (
	"errors"
	"fmt"
	"strings"
)

// llamaBuild is the llama.cpp build the personality imitates (the
// catalog's ghcr.io/ggml-org/llama.cpp:server-b6900 dialect: `main: ...`
// lines).
const llamaBuild = "6900"

// llamaPersonality is llama.cpp's llama-server (engines.md §4.1, §4.5): it
// binds the HTTP port first and answers 503 `Loading model` on every route
// while it loads the GGUF file; its log (all on stderr, as common_log writes
// it) follows the file: architecture, layers, offloaded layers and buffer
// sizes come from the GGUF header.
var llamaPersonality = &personality{
	phases: []phase{{"boot", 0.05}, {"load", 0.60}, {"context", 0.25}, {"slots", 0.10}},
	startup: []step{
		{phase: "boot", at: 0, text: "build: " + llamaBuild + " (c4abcb24) with cc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0 for x86_64-linux-gnu"},
		{phase: "boot", at: 0, text: "system info: n_threads = 8, n_threads_batch = 8, total_threads = 16"},
		{phase: "boot", at: 0.2, text: "main: binding port with default address family", action: "listen"},
		{phase: "boot", at: 0.3, text: "main: HTTP server is listening, hostname: {host}, port: {port}, http threads: 15"},
		{phase: "boot", at: 0.4, text: "main: loading model"},
		{phase: "boot", at: 0.5, text: "srv    load_model: loading model '{model}'"},
		{phase: "boot", at: 0.8, text: "llama_model_load_from_file_impl: using device CUDA0 (NVIDIA H100 80GB HBM3) (0000:01:00.0) - {free_mib} MiB free"},
		{phase: "boot", at: 0.9, action: "fail:model-missing"},
		{phase: "boot", at: 0.9, action: "fail:bad-magic"},
		{phase: "load", at: 0, text: "llama_model_loader: loaded meta data with {kv_count} key-value pairs and {tensor_count} tensors from {model} (version GGUF V{gguf_version} (latest))"},
		{phase: "load", at: 0, text: "llama_model_loader: - kv   0:                       general.architecture str              = {arch}"},
		{phase: "load", at: 0.05, text: "print_info: file format = GGUF V{gguf_version} (latest)"},
		{phase: "load", at: 0.05, text: "print_info: file type   = {file_type}"},
		{phase: "load", at: 0.05, action: "fail:unknown-arch"},
		{phase: "load", at: 0.1, text: "print_info: arch             = {arch}"},
		{phase: "load", at: 0.1, text: "print_info: n_ctx_train      = {ctx_train}"},
		{phase: "load", at: 0.1, text: "print_info: n_layer          = {layers}"},
		{phase: "load", at: 0.2, text: "load_tensors: loading model tensors, this can take a while... (mmap = true)"},
		{phase: "load", at: 0.3, text: "load_tensors: offloading {repeating} repeating layers to GPU"},
		{phase: "load", at: 0.3, text: "load_tensors: offloaded {offloaded}/{layers_total} layers to GPU"},
		{phase: "load", at: 0.35, action: "fail:oom-load"},
		{phase: "load", at: 0.35, action: "fail:hang"},
		{phase: "load", at: 0.35, action: "fail:exit"},
		{phase: "load", at: 1, text: "load_tensors:        CUDA0 model buffer size = {gpu_mib} MiB"},
		{phase: "load", at: 1, text: "load_tensors:   CPU_Mapped model buffer size = {cpu_mib} MiB"},
		{phase: "context", at: 0.1, text: "llama_context: constructing llama_context"},
		{phase: "context", at: 0.1, text: "llama_context: n_seq_max     = {np}"},
		{phase: "context", at: 0.1, text: "llama_context: n_ctx         = {n_ctx}"},
		{phase: "context", at: 0.1, text: "llama_context: n_ctx_per_seq = {n_ctx_seq}"},
		{phase: "context", at: 0.5, action: "fail:kv-none"},
		{phase: "context", at: 0.6, text: "llama_kv_cache:      CUDA0 KV buffer size = {kv_gpu_mib} MiB"},
		{phase: "context", at: 0.6, text: "llama_kv_cache: size = {kv_mib} MiB ({n_ctx} cells, {layers} layers, {np}/{np} seqs), K (f16): {k_mib} MiB, V (f16): {k_mib} MiB"},
		{phase: "context", at: 0.8, text: "llama_context:      CUDA0 compute buffer size =   300.01 MiB"},
		{phase: "context", at: 1, text: "common_init_from_params: warming up the model with an empty run - please wait ... (--no-warmup to disable)"},
		{phase: "slots", at: 0.5, text: "srv          init: initializing slots, n_slots = {np}"},
		{phase: "slots", at: 0.5, text: "slot         init: id  0 | task -1 | new slot n_ctx_slot = {n_ctx_seq}"},
		{phase: "slots", at: 1, action: "ready"},
		{phase: "slots", at: 1, text: "main: model loaded"},
		{phase: "slots", at: 1, text: "main: server is listening on http://{host}:{port} - starting the main loop"},
		{phase: "slots", at: 1, text: "srv  update_slots: all slots are idle"},
	},
	failures: map[string]failScript{
		"model-missing": {code: 1, lines: append([]string{"{problem}",
			"llama_model_load: error loading model: llama_model_loader: failed to load model from {model}"}, llamaLoadTail...)},
		"bad-magic": {code: 1, lines: append([]string{"{problem}",
			"llama_model_load: error loading model: llama_model_loader: failed to load model from {model}"}, llamaLoadTail...)},
		"unknown-arch": {code: 1, lines: append([]string{
			"llama_model_load: error loading model: error loading model architecture: unknown model architecture: '{arch}'"}, llamaLoadTail...)},
		"oom-load": {code: 1, lines: append([]string{
			"ggml_backend_cuda_buffer_type_alloc_buffer: allocating {gpu_mib} MiB on device 0: cudaMalloc failed: out of memory",
			"alloc_tensor_range: failed to allocate CUDA0 buffer of size {gpu_bytes}",
			"llama_model_load: error loading model: unable to allocate CUDA0 buffer"}, llamaLoadTail...)},
		"kv-none": {code: 1, lines: []string{
			"ggml_backend_cuda_buffer_type_alloc_buffer: allocating {kv_gpu_mib} MiB on device 0: cudaMalloc failed: out of memory",
			"alloc_tensor_range: failed to allocate CUDA0 buffer of size {kv_gpu_bytes}",
			"llama_init_from_model: failed to initialize the context: failed to allocate buffer for kv cache",
			"common_init_from_params: failed to create context with model '{model}'",
			"srv    load_model: failed to load model, '{model}'",
			"srv    operator(): operator(): cleaning up before exit...",
			"main: exiting due to model loading error",
		}},
		// A CUDA error while serving: ggml aborts (SIGABRT, exit 134).
		"crash-after": {code: 134, lines: []string{
			"CUDA error: an illegal memory access was encountered",
			"  current device: 0, in function ggml_backend_cuda_synchronize at /app/ggml/src/ggml-cuda/ggml-cuda.cu:2628",
			"  cudaStreamSynchronize(cuda_ctx->stream())",
			"/app/ggml/src/ggml-cuda/ggml-cuda.cu:88: CUDA error",
		}},
		"port-in-use": {code: 1, lines: []string{
			"srv          start: couldn't bind HTTP server socket, hostname: {host}, port: {port}",
			"srv  llama_server: exiting due to HTTP server error",
		}},
	},
	shutdown: []step{{text: "srv    operator(): operator(): cleaning up before exit..."}},
	stream:   func(who) bool { return false },
	vars:     llamaVars,
}

// llamaLoadTail is what follows every model loading error.
var llamaLoadTail = []string{
	"llama_model_load_from_file_impl: failed to load model",
	"common_init_from_params: failed to load model '{model}'",
	"srv    load_model: failed to load model, '{model}'",
	"srv    operator(): operator(): cleaning up before exit...",
	"main: exiting due to model loading error",
}

// resolveGGUF reads the model file's header. A missing or malformed file
// becomes the failure llama-server itself would print (unless
// --sim-model-check is off); an architecture the build does not know
// fails after the metadata lines, as llama.cpp's loader does.
func (s *sim) resolveGGUF() {
	o := s.o
	s.model = &modelInfo{GGUF: true, Arch: "llama", TorchDtype: "float16", MaxPos: 4096, Layers: 32, KVHeads: 8, HeadDim: 128, SizeGiB: 4.58, Shards: 1}
	info, err := readGGUF(o.Model)
	var prob *ggufProblem
	switch {
	case err == nil:
		s.gguf, s.modelOK = info, true
		mi := s.model
		mi.Arch, mi.SizeGiB = info.Arch, float64(info.WeightBytes)/gib
		if info.Layers > 0 {
			mi.Layers = info.Layers
		}
		if info.KVHeads > 0 && info.HeadDim > 0 {
			mi.KVHeads, mi.HeadDim = info.KVHeads, info.HeadDim
		}
		if info.CtxTrain > 0 {
			mi.MaxPos = info.CtxTrain
		}
		if !llamaArchs[info.Arch] {
			s.modelProblem = "unknown-arch"
		}
	case errors.As(err, &prob) && o.ModelCheck:
		s.problemLine = prob.line
		s.modelProblem = "bad-magic"
		if strings.Contains(prob.line, "failed to open") {
			s.modelProblem = "model-missing"
		}
	}
	if o.ModelSizeGiB > 0 {
		s.model.SizeGiB = o.ModelSizeGiB
	}
}

// llamaVars computes what llama-server prints for the file and the flags:
// -ngl layers (of n_layer + the output layer) and their share of the
// weights on the GPU, the KV cache for -c cells (shared by the -np slots)
// on the offloaded layers.
func llamaVars(s *sim) map[string]string {
	o, mi := s.o, s.model
	n := mi.Layers
	off := n + 1
	if o.NGL >= 0 {
		off = min(o.NGL, n+1)
	}
	repeating := min(off, n)
	weights := int64(mi.SizeGiB * gib)
	gpuBytes := weights * int64(off) / int64(n+1)
	nctx := o.MaxModelLen
	if nctx <= 0 {
		nctx = mi.MaxPos
	}
	np := max(o.MaxNumSeqs, 1)
	kvBytes := int64(nctx) * int64(mi.kvBytesPerToken())
	kvGPU := kvBytes * int64(repeating) / int64(max(n, 1))
	s.maxLen = nctx / np
	s.kvTokens = nctx
	s.metrics.numBlocks = max(nctx/blockSize, 1)
	mib := func(b int64) string { return fmt.Sprintf("%.2f", float64(b)/(1<<20)) }
	freeMiB := mibOf(s.gpuFree() / 0.9899 * 0.985)
	s.memoryProblem(llamaMemory(float64(freeMiB), float64(gpuBytes)/(1<<20), float64(kvGPU)/(1<<20)))
	v := map[string]string{
		"model": o.Model, "host": o.Host, "port": fmt.Sprint(o.Port), "arch": mi.Arch,
		"free_mib": fmt.Sprint(freeMiB), "kv_count": "36", "tensor_count": "197", "gguf_version": "3",
		"file_type": "Q4_K - Medium", "ctx_train": fmt.Sprint(mi.MaxPos), "layers": fmt.Sprint(n),
		"layers_total": fmt.Sprint(n + 1), "offloaded": fmt.Sprint(off), "repeating": fmt.Sprint(repeating),
		"gpu_mib": mib(gpuBytes), "gpu_bytes": fmt.Sprint(gpuBytes), "cpu_mib": mib(weights - gpuBytes),
		"np": fmt.Sprint(np), "n_ctx": fmt.Sprint(nctx), "n_ctx_seq": fmt.Sprint(nctx / np),
		"kv_mib": mib(kvBytes), "k_mib": mib(kvBytes / 2), "kv_gpu_mib": mib(kvGPU), "kv_gpu_bytes": fmt.Sprint(kvGPU),
		"problem": s.problemLine,
	}
	if g := s.gguf; g != nil {
		v["kv_count"], v["tensor_count"], v["gguf_version"] = fmt.Sprint(g.KVCount), fmt.Sprint(g.TensorCount), fmt.Sprint(g.Version)
		if g.FileType != "" {
			v["file_type"] = g.FileType
		}
	}
	if v["problem"] == "" {
		switch o.Fail {
		case "bad-magic":
			v["problem"] = "gguf_init_from_file_impl: invalid magic characters: 'xxxx', expected 'GGUF'"
		default:
			v["problem"] = fmt.Sprintf("gguf_init_from_file: failed to open GGUF file '%s' (No such file or directory)", o.Model)
		}
	}
	return v
}
