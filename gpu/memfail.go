package gpu

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// memoryFailure matches engines' own out-of-memory error lines: vLLM's
// free-memory check, CUDA OOM during load, no room for the KV cache, a max
// length the KV cache cannot hold, llama.cpp's cudaMalloc failure.
var memoryFailure = regexp.MustCompile(`CUDA out of memory|OutOfMemoryError|Free memory on device|No available memory for the cache blocks|KV cache is needed|stored in KV cache|cudaMalloc failed: out of memory|failed to allocate CUDA`)

// IsMemoryFailure reports whether an engine's error line says it ran out
// of GPU memory.
func IsMemoryFailure(line string) bool { return memoryFailure.MatchString(line) }

// MemorySuggestion is the advice that goes with an engine's memory error.
func MemorySuggestion(line string) string {
	switch {
	case strings.Contains(line, "Free memory on device"):
		return "other processes use the GPU: lower --gpu-memory-utilization below the free share, or stop them"
	case strings.Contains(line, "No available memory for the cache blocks"), strings.Contains(line, "KV cache"):
		return "the KV cache does not fit: lower --max-model-len, raise --gpu-memory-utilization, or add --tensor-parallel-size"
	}
	return "the weights do not fit: use more GPUs (--tensor-parallel-size), a quantized model, or free memory on the GPU"
}

// StateText describes the GPUs with the given UUIDs (all when none are
// given): free memory and the processes on each.
func StateText(snap Snapshot, uuids []string) string {
	var parts []string
	for _, d := range snap.Devices {
		if len(uuids) > 0 && !slices.Contains(uuids, d.UUID) {
			continue
		}
		s := fmt.Sprintf("%s: %s", d.Label(), d.MemoryText())
		if len(d.Processes) > 0 {
			s += ", processes: " + processesText(d.Processes)
		} else {
			s += ", no processes"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no GPU reported"
	}
	return strings.Join(parts, "; ")
}
