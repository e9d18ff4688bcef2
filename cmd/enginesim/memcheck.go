package main

import (
	"fmt"
	"math"
)

// This file decides, from the flags and the memory figures, whether the
// start-up runs out of GPU memory on its own, the way each engine would:
// the failure then follows from arithmetic a test can set up (a
// --max-model-len too long, another process holding memory, too many
// offloaded layers) with the engine's own message and numbers. With the
// defaults (an 80 GiB GPU, all free, a 15 GiB model) nothing fails.

// gpuTotal is what torch reports of the simulated card (~79.19 GiB of 80).
func (s *sim) gpuTotal() float64 { return s.o.GPUMemGiB * 0.9899 }

// gpuFree is the free memory at start, in the same units.
func (s *sim) gpuFree() float64 {
	if s.o.GPUFreeGiB <= 0 {
		return s.gpuTotal()
	}
	return min(s.o.GPUFreeGiB*0.9899, s.gpuTotal())
}

// memoryProblem sets the failure the memory figures cause, unless
// --sim-fail or the model already chose one.
func (s *sim) memoryProblem(mode string) {
	if s.modelProblem == "" && (s.o.Fail == "" || s.o.Fail == "none") && mode != "" {
		s.modelProblem = mode
	}
}

// vllmMemory follows vLLM V1's checks in order: init_device refuses a
// fraction above the free memory; the weights must fit in what is free;
// the KV cache gets the fraction's budget minus the weights and the
// activation peak, and must hold one request of max_model_len.
func (s *sim) vllmMemory(ranks float64) string {
	total, free, util := s.gpuTotal(), s.gpuFree(), s.o.GPUMemUtil
	weights := s.model.SizeGiB / ranks
	kvRaw := total*util - weights - 2.17
	perToken := s.model.kvBytesPerToken() / ranks
	needed := float64(s.maxLen) * perToken / gib
	s.estMaxLen = int(max(kvRaw, 0)*gib/perToken) / 16 * 16
	switch {
	case free < total*util:
		return "free-mem"
	case weights > free-0.5:
		return "oom-load"
	case kvRaw <= 0:
		return "kv-none"
	case needed > kvRaw:
		return "kv-max-len"
	}
	return ""
}

// vllmMemoryVars are the figures of vLLM's two memory refusals.
func (s *sim) vllmMemoryVars(v map[string]string) {
	total, free, util := s.gpuTotal(), s.gpuFree(), s.o.GPUMemUtil
	perToken := s.model.kvBytesPerToken() / float64(s.o.TP*s.o.PP)
	v["free_gib"], v["total_gib"] = fmt.Sprintf("%.2f", free), fmt.Sprintf("%.2f", total)
	v["util"], v["util_gib"] = fmt.Sprint(util), fmt.Sprintf("%.2f", total*util)
	v["kv_needed"] = fmt.Sprintf("%.2f", float64(s.maxLen)*perToken/gib)
	v["est_max_len"] = fmt.Sprint(s.estMaxLen)
}

// failKVMaxLen: one request of max_model_len does not fit in the KV cache
// (vLLM's check_enough_kv_cache_memory).
func (s *sim) failKVMaxLen() int {
	v := s.vars
	return s.failEngineInit([]string{
		`  File "` + vllmLib + `/v1/engine/core.py", line 92, in __init__`,
		"    self._initialize_kv_caches(vllm_config)",
		`  File "` + vllmLib + `/v1/engine/core.py", line 199, in _initialize_kv_caches`,
		"    kv_cache_configs = get_kv_cache_configs(vllm_config, kv_cache_specs,",
		`  File "` + vllmLib + `/v1/core/kv_cache_utils.py", line 1243, in get_kv_cache_configs`,
		"    check_enough_kv_cache_memory(vllm_config, kv_cache_spec_one_worker,",
		`  File "` + vllmLib + `/v1/core/kv_cache_utils.py", line 716, in check_enough_kv_cache_memory`,
		"    raise ValueError(",
	}, fmt.Sprintf("ValueError: To serve at least one request with the models's max seq len (%d), (%s GiB KV cache is needed, which is larger than the available KV cache memory (%s GiB). Based on the available memory, the estimated maximum model length is %s. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
		s.maxLen, v["kv_needed"], v["kv_gib"], v["est_max_len"]))
}

// failFreeMem: init_device finds less free memory than the fraction asks.
func (s *sim) failFreeMem() int {
	v := s.vars
	return s.failEngineInit([]string{
		`  File "` + vllmLib + `/v1/executor/uniproc_executor.py", line 54, in _init_executor`,
		`    self.collective_rpc("init_device")`,
		`  File "` + vllmLib + `/v1/worker/gpu_worker.py", line 185, in init_device`,
		"    raise ValueError(",
	}, fmt.Sprintf("ValueError: Free memory on device (%s/%s GiB) on startup is less than desired GPU memory utilization (%s, %s GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.",
		v["free_gib"], v["total_gib"], v["util"], v["util_gib"]))
}

// sglangMemory follows SGLang's init_memory_pool: the weights load into
// what is free; the KV pool gets what is left of mem_fraction_static ×
// total once they are loaded, and must be positive.
func sglangMemory(weights, availStart, kvRaw float64) string {
	switch {
	case weights > availStart-0.5:
		return "oom-load"
	case kvRaw <= 0:
		return "kv-none"
	}
	return ""
}

// llamaMemory follows llama.cpp's allocations: the offloaded layers'
// buffer, then the KV cache of the offloaded layers and the compute
// buffer, each in what is free on the device.
func llamaMemory(freeMiB, weightsMiB, kvMiB float64) string {
	switch {
	case weightsMiB > freeMiB:
		return "oom-load"
	case weightsMiB+kvMiB+300 > freeMiB:
		return "kv-none"
	}
	return ""
}

// mibOf converts GiB to whole MiB as llama.cpp prints the free memory.
func mibOf(g float64) int { return int(math.Floor(g * 1024)) }
