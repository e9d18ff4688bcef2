package main

import (
	"context"
	"fmt"
)

// vllmPersonality is vLLM's `vllm serve` (engines.md §1.3, §7.4): the
// API server binds its socket early, the engine core loads, compiles,
// profiles, allocates the KV cache and captures CUDA graphs, and only
// then does the API server listen (connection refused until ready).
// Logger records go to stdout with vLLM's process prefixes, tqdm bars and
// tracebacks to stderr. The parts that draw progress bars or open the
// listener are code steps (phases.go); the failures' tracebacks are built
// in failures.go.
var vllmPersonality = &personality{
	phases: phases,
	startup: []step{
		{phase: "platform", at: 0, who: vNone, src: "__init__.py:239", text: "No platform detected, vLLM is running on UnspecifiedPlatform", when: "fail:no-gpu"},
		{phase: "platform", at: 0, who: vNone, src: "__init__.py:216", text: "Automatically detected platform cuda.", when: "!fail:no-gpu"},
		{phase: "platform", at: 1, who: vAPI, src: "api_server.py:1839", text: "vLLM API server version {version}"},
		// setup_server(): vLLM binds its socket now, before the engine starts.
		{phase: "platform", at: 1, who: vAPI, src: "utils.py:233", text: "non-default args: {non_default}", action: "code:bind-early"},
		{phase: "config", at: 0.8, action: "fail:no-gpu"},
		{phase: "config", at: 0.8, action: "fail:model-missing"},
		{phase: "config", at: 0.8, who: vAPI, src: "model.py:547", text: "Resolved architecture: {arch}"},
		{phase: "config", at: 0.8, who: vAPI, src: "model.py:1510", text: "Using max model len {max_len}"},
		{phase: "config", at: 0.8, who: vAPI, src: "scheduler.py:205", text: "Chunked prefill is enabled with max_num_batched_tokens={batched}."},
		{phase: "config", at: 1},
		{phase: "engine_spawn", at: 0.4, who: vNone, src: "__init__.py:216", text: "Automatically detected platform cuda."}, // the engine process re-imports vLLM
		{phase: "engine_spawn", at: 0.6, who: vEngine, src: "core.py:644", text: "Waiting for init message from front-end."},
		{phase: "engine_spawn", at: 0.6, who: vEngine, src: "core.py:77", text: "Initializing a V1 LLM engine (v{version}) with config: {engine_config}"},
		{phase: "engine_spawn", at: 0.8, who: vEngine, src: "parallel_state.py:1208", text: "rank 0 in world size {world} is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0"},
		{phase: "engine_spawn", at: 0.9, action: "fail:free-mem"}, // init_device
		{phase: "engine_spawn", at: 1, who: vEngine, src: "gpu_model_runner.py:2602", text: "Starting to load model {model}..."},
		{action: "code:load"}, // weights, with the shard bars; oom-load, hang and exit fire half way
		{phase: "compile", at: 0, who: vEngine, src: "backends.py:548", text: "Using cache directory: /root/.cache/vllm/torch_compile_cache/{compile_hash}/rank_0_0/backbone for vLLM's torch.compile", when: "!eager"},
		{phase: "compile", at: 0.3, who: vEngine, src: "backends.py:559", text: "Dynamo bytecode transform time: {elapsed} s", when: "!eager", action: "mark:dynamo"},
		{phase: "compile", at: 0.95, who: vEngine, src: "backends.py:197", text: "Compiling a graph for dynamic shape takes {since:dynamo} s", when: "!eager"},
		{phase: "compile", at: 1, who: vEngine, src: "monitor.py:34", text: "torch.compile takes {elapsed} s in total", when: "!eager"},
		{phase: "profile", at: 0, action: "mark:init"},
		{phase: "profile", at: 1, who: vEngine, src: "gpu_worker.py:298", text: "Available KV cache memory: -1.37 GiB", when: "fail:kv-none", action: "fail:kv-none"},
		{phase: "profile", at: 1, who: vEngine, src: "gpu_worker.py:298", text: "Available KV cache memory: {kv_gib} GiB"},
		{phase: "kv", at: 0.2, action: "fail:kv-max-len"},
		{phase: "kv", at: 0.5, who: vEngine, src: "kv_cache_utils.py:1087", text: "GPU KV cache size: {kv_tokens} tokens"},
		{phase: "kv", at: 0.5, who: vEngine, src: "kv_cache_utils.py:1091", text: "Maximum concurrency for {max_len_commas} tokens per request: {concurrency}x"},
		{phase: "kv", at: 1},
		{action: "code:graphs"}, // the two CUDA-graph bars
		{who: vEngine, src: "core.py:210", text: "init engine (profile, create kv cache, warmup model) took {since:init} seconds"},
		{action: "code:post"}, // routes, uvicorn's lines, and the listener between them
	},
	failFuncs: map[string]func(*sim) int{
		"no-gpu":        (*sim).failNoGPU,
		"model-missing": (*sim).failModelMissing,
		"kv-none":       (*sim).failKVNone,
		"kv-max-len":    (*sim).failKVMaxLen,
		"free-mem":      (*sim).failFreeMem,
		"port-in-use":   (*sim).failPortInUse,
	},
	code: map[string]func(*sim, context.Context) (int, bool){
		"bind-early": func(s *sim, _ context.Context) (int, bool) {
			if s.o.Fail == "port-in-use" || !portFree(s.o) {
				return s.failPortInUse(), false
			}
			return 0, true
		},
		"load": (*sim).loadPhase,
		"graphs": func(s *sim, ctx context.Context) (int, bool) {
			return 0, s.graphsPhase(ctx)
		},
		"post": func(s *sim, ctx context.Context) (int, bool) {
			ln, code := s.postPhase(ctx)
			s.ln = ln
			return code, ln != nil
		},
	},
	stream: func(who) bool { return true }, // vLLM's logger writes to stdout
	vars:   vllmVars,
}

// vllmVars are the figures vLLM's start-up prints.
func vllmVars(s *sim) map[string]string {
	o := s.o
	if !s.modelOK {
		s.modelProblem = "model-missing"
	}
	v := map[string]string{
		"version": vllmVersion, "non_default": pyDict(o.nonDefault), "arch": s.model.Arch,
		"max_len": fmt.Sprint(s.maxLen), "batched": fmt.Sprint(s.batchedTokens()), "engine_config": s.engineConfig(),
		"world": fmt.Sprint(o.TP * o.PP), "model": o.Model, "compile_hash": s.compileHash(),
		"kv_gib": fmt.Sprintf("%.2f", s.kvGiB), "kv_tokens": commas(s.kvTokens), "max_len_commas": commas(s.maxLen),
		"concurrency": fmt.Sprintf("%.2f", float64(s.kvTokens)/float64(s.maxLen)),
	}
	s.vllmMemoryVars(v)
	return v
}
