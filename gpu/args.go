package gpu

import (
	"strconv"
	"strings"

	"aima/errs"
)

// Profile is what the estimator and the fit rule know about an engine's
// memory: which flags set tensor parallelism, the memory share and the
// context length, and their defaults.
type Profile struct {
	Engine string
	// TPFlags set the tensor-parallel size (GPUs per replica).
	TPFlags []string
	// UtilFlags set the share of each GPU's total memory the engine
	// takes (vLLM --gpu-memory-utilization); empty for engines that take
	// what they need.
	UtilFlags   []string
	DefaultUtil float64
	// MaxLenFlags set the context length the KV cache must hold.
	MaxLenFlags   []string
	DefaultMaxLen int // when neither a flag nor the model says (0: the model's)
	// ZeroMaxLenIsModel: a context length of 0 asks for the model's own
	// (llama.cpp's -c 0).
	ZeroMaxLenIsModel bool
	KVDTypeFlags      []string
	// GPULayersFlags set how many layers go to the GPU (llama.cpp's
	// -ngl); the others stay in host memory.
	GPULayersFlags []string
	// Overhead is memory beyond weights and KV cache: activations at the
	// profiling batch, CUDA graphs, the CUDA context.
	Overhead int64
}

// ProfileFor returns the memory profile of an engine type. Unknown types
// get a profile without flags (weights plus overhead).
func ProfileFor(engineType string) Profile {
	switch engineType {
	case "vllm":
		return Profile{Engine: engineType, TPFlags: []string{"--tensor-parallel-size", "-tp"},
			UtilFlags: []string{"--gpu-memory-utilization"}, DefaultUtil: 0.9,
			MaxLenFlags: []string{"--max-model-len"}, KVDTypeFlags: []string{"--kv-cache-dtype"}, Overhead: 3 << 29}
	case "sglang":
		// --mem-fraction-static of the GPU's total holds the weights
		// (split by TP) and the KV pool; activations and CUDA graphs
		// live in the rest, so nothing else counts against the share.
		return Profile{Engine: engineType, TPFlags: []string{"--tp-size", "--tp", "--tensor-parallel-size"},
			UtilFlags: []string{"--mem-fraction-static"}, DefaultUtil: 0.88,
			MaxLenFlags: []string{"--context-length"}, KVDTypeFlags: []string{"--kv-cache-dtype"}, Overhead: 0}
	case "llamacpp":
		// The GPU holds the weights of the -ngl offloaded layers (of
		// n_layer + the output layer) and their share of the KV cache for
		// -c cells (shared by the -np slots); the rest stays in host memory.
		return Profile{Engine: engineType, MaxLenFlags: []string{"-c", "--ctx-size"}, DefaultMaxLen: 4096, ZeroMaxLenIsModel: true,
			KVDTypeFlags: []string{"-ctk", "--cache-type-k"}, GPULayersFlags: []string{"-ngl", "--n-gpu-layers", "--gpu-layers"},
			Overhead: 1 << 29}
	}
	return Profile{Engine: engineType, Overhead: 1 << 29}
}

// MaxModelLen bounds a context length (128 Mi tokens, ten times the
// longest any model offers), so the KV cache arithmetic cannot overflow.
const MaxModelLen = 1 << 27

// EngineArgs are the memory-relevant engine arguments of a service.
type EngineArgs struct {
	TP          int     `json:"tensor_parallel_size" jsonschema:"GPUs per replica (1 when not given)"`
	Util        float64 `json:"memory_utilization,omitempty" jsonschema:"declared share of each GPU's memory (0 when not declared)"`
	MaxModelLen int     `json:"max_model_len,omitempty" jsonschema:"context length given in the args (0 when not given; -1 when the args ask for the model's own, llama.cpp -c 0)"`
	KVCacheType string  `json:"kv_cache_dtype,omitempty"`
	GPULayers   int     `json:"gpu_layers" jsonschema:"layers offloaded to the GPU (llama.cpp -ngl); -1 = all (the default)"`
}

// Parse reads the profile's flags from args (later flags win), as
// "--flag value" or "--flag=value". A malformed value is an
// InvalidArgument error on field args.
func (p Profile) Parse(args []string) (EngineArgs, error) {
	ea := EngineArgs{TP: 1, GPULayers: -1}
	for i := 0; i < len(args); i++ {
		name, val, ok := flagValue(args, i)
		if !ok {
			continue
		}
		switch {
		case contains(p.TPFlags, name):
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > MaxCount {
				return ea, errs.Invalid("args", "%s %q: want a whole number of GPUs between 1 and %d", name, val, MaxCount)
			}
			ea.TP = n
		case contains(p.UtilFlags, name):
			f, err := strconv.ParseFloat(val, 64)
			// Written so that NaN (for which every comparison is false)
			// fails it too.
			if err != nil || !(f > 0 && f <= 1) {
				return ea, errs.Invalid("args", "%s %q: want a fraction of GPU memory in (0, 1]", name, val)
			}
			ea.Util = f
		case contains(p.MaxLenFlags, name):
			n, err := strconv.Atoi(strings.TrimSuffix(strings.ToLower(val), "k"))
			if err == nil && strings.HasSuffix(strings.ToLower(val), "k") {
				n = max(min(n, MaxModelLen), 0) * 1024 // clamped first, so it never wraps
			}
			if err == nil && n == 0 && p.ZeroMaxLenIsModel {
				ea.MaxModelLen = -1
				continue
			}
			if err != nil || n < 1 || n > MaxModelLen {
				return ea, errs.Invalid("args", "%s %q: want a positive number of tokens up to %d", name, val, MaxModelLen)
			}
			ea.MaxModelLen = n
		case contains(p.KVDTypeFlags, name):
			ea.KVCacheType = val
		case contains(p.GPULayersFlags, name):
			if val == "auto" || val == "all" {
				ea.GPULayers = -1
				continue
			}
			n, err := strconv.Atoi(val)
			if err != nil || n < -1 {
				return ea, errs.Invalid("args", "%s %q: want a number of layers (or -1, auto, all)", name, val)
			}
			ea.GPULayers = n
		}
	}
	return ea, nil
}

// flagValue reads args[i] as a flag with a value.
func flagValue(args []string, i int) (name, val string, ok bool) {
	a := args[i]
	if !strings.HasPrefix(a, "-") {
		return "", "", false
	}
	if n, v, found := strings.Cut(a, "="); found {
		return n, v, true
	}
	if i+1 < len(args) {
		return a, args[i+1], true
	}
	return a, "", true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Fraction is the share of each GPU a service declares: its memory
// utilization flag, or the whole GPU when it declares none (so by default
// a GPU belongs to one service).
func (ea EngineArgs) Fraction() float64 {
	if ea.Util > 0 {
		return ea.Util
	}
	return 1
}
