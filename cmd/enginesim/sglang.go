package main

import (
	"fmt"
	"strings"
)

// sglangVersion is the SGLang release the personality imitates.
const sglangVersion = "0.5.5"

// sglangPersonality is SGLang's launch_server (engines.md §4.2, §4.5): the
// scheduler loads weights, the KV pool and CUDA graphs first; only then
// does uvicorn bind (the port refuses connections while loading); a warmup
// request follows, and only after it the fired-up line. /health answers
// 503 until then. Python's logging goes to stderr, uvicorn's access lines
// to stdout.
var sglangPersonality = &personality{
	phases: []phase{
		{"config", 0.05}, {"init", 0.10}, {"load", 0.30}, {"kv", 0.10},
		{"graphs", 0.25}, {"bind", 0.05}, {"warmup", 0.15},
	},
	startup: []step{
		{phase: "config", at: 0.5, who: mainProc, text: "server_args=ServerArgs(model_path='{model}', tokenizer_path='{model}', tokenizer_mode='auto', load_format='auto', trust_remote_code=False, dtype='auto', kv_cache_dtype='auto', context_length={context_arg}, device='cuda', served_model_name='{served}', host='{host}', port={port}, mem_fraction_static={frac}, max_running_requests={max_running_arg}, tp_size={tp}, enable_metrics={metrics}, enable_memory_saver={memory_saver}, ...)"},
		{phase: "config", at: 0.6, action: "fail:model-missing"},
		{phase: "init", at: 0.2, who: tp0, text: "Init torch distributed begin."},
		{phase: "init", at: 1, who: tp0, text: "Init torch distributed ends. elapsed={elapsed} s, mem usage=0.09 GB"},
		{phase: "load", at: 0, who: tp0, text: "Load weight begin. avail mem={avail_start} GB"},
		{phase: "load", at: 0.1, who: raw, text: "Loading safetensors checkpoint shards:   0% Completed | 0/{shards} [00:00<?, ?it/s]"},
		{phase: "load", at: 0.5, action: "fail:oom-load"},
		{phase: "load", at: 0.5, action: "fail:hang"},
		{phase: "load", at: 0.5, action: "fail:exit"},
		{phase: "load", at: 0.9, who: raw, text: "Loading safetensors checkpoint shards: 100% Completed | {shards}/{shards} [00:{load_secs}<00:00,  1.00it/s]"},
		{phase: "load", at: 1, who: tp0, text: "Load weight end. type={arch}, dtype=torch.{dtype}, avail mem={avail_loaded} GB, mem usage={weights} GB."},
		{phase: "kv", at: 0.5, action: "fail:kv-none"},
		{phase: "kv", at: 0.6, who: tp0, text: "KV Cache is allocated. #tokens: {kv_tokens}, K size: {k_size} GB, V size: {k_size} GB"},
		{phase: "kv", at: 1, who: tp0, text: "Memory pool end. avail mem={pool_end} GB"},
		{phase: "graphs", at: 0, who: tp0, text: "Capture cuda graph begin. This can take up to several minutes. avail mem={graph_begin} GB"},
		{phase: "graphs", at: 0.05, who: tp0, text: "Capture cuda graph bs [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160]"},
		{phase: "graphs", at: 1, who: tp0, text: "Capture cuda graph end. Time elapsed: {elapsed} s"},
		{phase: "graphs", at: 1, who: tp0, text: "max_total_num_tokens={kv_tokens}, chunked_prefill_size={chunked}, max_prefill_tokens=16384, max_running_requests={max_running}, context_len={context_len}, available_gpu_mem={graph_end} GB"},
		{phase: "bind", at: 0.4, who: uvicorn, text: "INFO:     Started server process [{pid}]"},
		{phase: "bind", at: 0.5, who: uvicorn, text: "INFO:     Waiting for application startup."},
		{phase: "bind", at: 0.6, who: uvicorn, text: "INFO:     Application startup complete.", action: "listen"},
		{phase: "bind", at: 0.7, who: uvicorn, text: "INFO:     Uvicorn running on http://{host}:{port} (Press CTRL+C to quit)"},
		{phase: "warmup", at: 0.3, action: "warmup"},
		{phase: "warmup", at: 1, action: "ready"},
		{phase: "warmup", at: 1, who: mainProc, text: "The server is fired up and ready to roll!"},
	},
	failures: map[string]failScript{
		"model-missing": {who: raw, code: 1, lines: []string{
			"Traceback (most recent call last):",
			`  File "<frozen runpy>", line 198, in _run_module_as_main`,
			`  File "<frozen runpy>", line 88, in _run_code`,
			`  File "` + sglangLib + `/launch_server.py", line 24, in <module>`,
			"    server_args = prepare_server_args(sys.argv[1:])",
			`  File "` + sglangLib + `/srt/server_args.py", line 3120, in __post_init__`,
			"    self._handle_missing_default_values()",
			`  File "` + pyLib + `/transformers/configuration_utils.py", line 721, in _get_config_dict`,
			"    raise OSError(",
			"OSError: Can't load the configuration of '{model}'. If you were trying to load it from 'https://huggingface.co/models', make sure you don't have a local directory with the same name. Otherwise, make sure '{model}' is the correct path to a directory containing a config.json file",
		}},
		"oom-load": {who: tp0, code: 1, lines: []string{
			"Scheduler hit an exception: " + sglangSchedulerFrames + "\n" +
				`  File "` + sglangLib + `/srt/model_executor/model_runner.py", line 791, in load_model` + "\n" +
				"    self.model = get_model(\n" +
				`  File "` + pyLib + `/torch/utils/_device.py", line 104, in __torch_function__` + "\n" +
				"    return func(*args, **kwargs)\n" +
				"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 24.00 MiB. GPU 0 has a total capacity of {total} GiB of which 4.31 MiB is free. Including non-PyTorch memory, this process has {in_use} GiB memory in use. Of the allocated memory {allocated} GiB is allocated by PyTorch, and 33.83 MiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)\n",
			"MAIN|Received sigquit from a child process. It usually means the child failed.",
		}},
		"kv-none": {who: tp0, code: 1, lines: []string{
			"Scheduler hit an exception: " + sglangSchedulerFrames + "\n" +
				`  File "` + sglangLib + `/srt/model_executor/model_runner.py", line 1784, in init_memory_pool` + "\n" +
				"    raise RuntimeError(\n" +
				"RuntimeError: Not enough memory. Please try to increase --mem-fraction-static. Current value: mem_fraction_static={frac}\n",
			"MAIN|Received sigquit from a child process. It usually means the child failed.",
		}},
		"port-in-use": {who: uvicorn, code: 1, lines: []string{
			"ERROR:    [Errno 98] error while attempting to bind on address ('{host}', {port}): address already in use",
		}},
		"crash-after": {who: tp0, code: 1, lines: []string{
			"Scheduler hit an exception: Traceback (most recent call last):\n" +
				`  File "` + sglangLib + `/srt/managers/scheduler.py", line 2762, in run_scheduler_process` + "\n" +
				"    scheduler.event_loop_overlap()\n" +
				"RuntimeError: CUDA error: an illegal memory access was encountered\n",
			"MAIN|Received sigquit from a child process. It usually means the child failed.",
		}},
		"warmup": {who: mainProc, code: 1, lines: []string{
			"Initialization failed. warmup error: Traceback (most recent call last):\nRuntimeError: the warmup request to /generate failed",
		}},
	},
	shutdown: []step{
		{who: uvicorn, text: "INFO:     Shutting down"},
		{who: uvicorn, text: "INFO:     Waiting for application shutdown."},
		{who: uvicorn, text: "INFO:     Application shutdown complete."},
		{who: uvicorn, text: "INFO:     Finished server process [{pid}]"},
	},
	stream: func(who) bool { return false },
	vars:   sglangVars,
}

const sglangLib = "/sgl-workspace/sglang/python/sglang"

// sglangSchedulerFrames open every scheduler start-up traceback.
var sglangSchedulerFrames = strings.Join([]string{
	"Traceback (most recent call last):",
	`  File "` + sglangLib + `/srt/managers/scheduler.py", line 2757, in run_scheduler_process`,
	"    scheduler = Scheduler(",
	`  File "` + sglangLib + `/srt/managers/scheduler.py", line 312, in __init__`,
	"    self.tp_worker = TpModelWorker(",
	`  File "` + sglangLib + `/srt/managers/tp_worker.py", line 84, in __init__`,
	"    self.model_runner = ModelRunner(",
	`  File "` + sglangLib + `/srt/model_executor/model_runner.py", line 285, in __init__`,
	"    self.initialize(min_per_gpu_memory)",
}, "\n")

// sglangVars computes what SGLang prints: its memory figures follow its
// rule (the KV pool gets what is left of mem_fraction_static × total once
// the weights are loaded; TP splits the weights and the pool).
func sglangVars(s *sim) map[string]string {
	o, mi := s.o, s.model
	if !s.modelOK {
		s.modelProblem = "model-missing"
	}
	tp := float64(o.TP)
	total := s.gpuTotal()
	availStart := s.gpuFree() - 0.62
	weights := mi.SizeGiB / tp
	availLoaded := availStart - weights
	kvRaw := availLoaded - total*(1-o.GPUMemUtil)
	s.memoryProblem(sglangMemory(weights, availStart, kvRaw))
	kv := max(kvRaw, 0.25)
	tokens := int(kv * gib / (mi.kvBytesPerToken() / tp))
	poolEnd := availLoaded - kv
	s.kvGiB, s.kvTokens = kv, tokens
	s.metrics.numBlocks = tokens // SGLang's pool is counted in tokens
	f2 := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	ctxArg, maxRunArg := "None", "None"
	if o.MaxModelLen > 0 {
		ctxArg = fmt.Sprint(o.MaxModelLen)
	}
	return map[string]string{
		"model": o.Model, "served": o.servedNames()[0], "host": o.Host, "port": fmt.Sprint(o.Port),
		"tp": fmt.Sprint(o.TP), "frac": fmt.Sprint(o.GPUMemUtil), "context_arg": ctxArg, "max_running_arg": maxRunArg,
		"metrics": pyBool(o.Metrics), "memory_saver": pyBool(o.EnableSleepMode), "pid": fmt.Sprint(s.log.apiPID),
		"arch": mi.Arch, "dtype": mi.dtype(o), "shards": fmt.Sprint(mi.Shards),
		"load_secs":   fmt.Sprintf("%02d", int(s.phaseDur("load").Seconds())%60),
		"avail_start": f2(availStart), "weights": f2(weights), "avail_loaded": f2(availLoaded),
		"kv_tokens": fmt.Sprint(tokens), "k_size": f2(kv / 2), "pool_end": f2(poolEnd),
		"graph_begin": f2(poolEnd + 0.55), "graph_end": f2(poolEnd + 0.1),
		"chunked": fmt.Sprint(s.batchedTokens()), "max_running": fmt.Sprint(o.MaxNumSeqs),
		"context_len": fmt.Sprint(s.maxLen), "total": f2(total), "in_use": f2(total - 0.01), "allocated": f2(total - 0.6),
	}
}
