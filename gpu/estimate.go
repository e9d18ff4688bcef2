package gpu

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	gguf "github.com/gpustack/gguf-parser-go"

	"aima/internal/units"
)

// Estimate is the memory a model needs on each GPU under an engine's
// arguments, from files aima reads without a GPU.
type Estimate struct {
	WeightsBytes    int64    `json:"weights_bytes" jsonschema:"size of the weights (0 when unknown)"`
	WeightsSource   string   `json:"weights_source,omitempty" jsonschema:"where the weight size came from"`
	KVBytesPerToken int64    `json:"kv_bytes_per_token,omitempty" jsonschema:"KV cache per token: layers × KV heads × head dim × 2 (K and V) × dtype bytes"`
	MaxModelLen     int      `json:"max_model_len,omitempty" jsonschema:"context length the KV cache must hold for one sequence"`
	MaxModelLenFrom string   `json:"max_model_len_source,omitempty"`
	KVBytes         int64    `json:"kv_bytes,omitempty" jsonschema:"KV cache for one max_model_len sequence"`
	OverheadBytes   int64    `json:"overhead_bytes" jsonschema:"activations, CUDA graphs and context (a rough allowance)"`
	TP              int      `json:"tensor_parallel_size"`
	Util            float64  `json:"memory_utilization,omitempty" jsonschema:"share of each GPU's total memory the engine takes (vLLM --gpu-memory-utilization); 0 for engines that take what they need"`
	Fraction        float64  `json:"fraction" jsonschema:"share of each GPU the service declares for sharing (1 = the whole GPU)"`
	PerGPUBytes     int64    `json:"per_gpu_bytes" jsonschema:"what each assigned GPU must hold: weights / TP + KV cache / TP + overhead"`
	Notes           []string `json:"notes,omitempty" jsonschema:"what the estimate could not know"`

	// Layers and GPULayers: llama.cpp's repeating layers and the layers
	// (of Layers + the output layer) offloaded to the GPU by -ngl.
	Layers    int `json:"layers,omitempty"`
	GPULayers int `json:"gpu_layers,omitempty"`

	// The engine's flag names, for suggestions.
	utilFlag, maxLenFlag, tpFlag, nglFlag string
	// fullWeights and fullKV are the sizes with every layer on the GPU.
	fullWeights, fullKV int64
}

// Text is a one-line summary: "~18.4 GiB per GPU (weights 14.96 GiB, KV cache 1.0 GiB for 8192 tokens, overhead 1.5 GiB)".
func (e Estimate) Text() string {
	s := fmt.Sprintf("~%s per GPU (weights %s", units.GiB(e.PerGPUBytes), units.GiB(e.WeightsBytes/int64(max(1, e.TP))))
	if e.KVBytes > 0 {
		s += fmt.Sprintf(", KV cache %s for %d tokens", units.GiB(e.KVBytes/int64(max(1, e.TP))), e.MaxModelLen)
	}
	return s + fmt.Sprintf(", overhead %s)", units.GiB(e.OverheadBytes))
}

// EstimateModel estimates a model's memory. path is a Hugging Face-style
// directory (config.json, safetensors) or a .gguf file; an empty path (a
// remote model reference) gives an estimate of the overhead only, with a
// note. Files are read through readModelFile.
func EstimateModel(path, format string, p Profile, ea EngineArgs) Estimate {
	e := Estimate{TP: max(1, ea.TP), Util: ea.Util, Fraction: ea.Fraction(), OverheadBytes: p.Overhead,
		utilFlag: first(p.UtilFlags), maxLenFlag: first(p.MaxLenFlags), tpFlag: first(p.TPFlags)}
	if e.Util == 0 {
		e.Util = p.DefaultUtil
	}
	var shape modelShape
	switch {
	case path == "":
		e.Notes = append(e.Notes, "model is a remote reference: its size is unknown, only the overhead is counted")
	case format == "gguf" || strings.EqualFold(filepath.Ext(path), ".gguf"):
		shape = ggufShape(path, &e)
	default:
		shape = hfShape(path, &e)
	}
	kvBytes := int64(2)
	if strings.Contains(strings.ToLower(ea.KVCacheType), "fp8") || strings.Contains(strings.ToLower(ea.KVCacheType), "q8") {
		kvBytes = 1
	}
	if shape.layers > 0 && shape.kvHeads > 0 && shape.headDim > 0 {
		e.KVBytesPerToken = int64(shape.layers) * int64(shape.kvHeads) * int64(shape.headDim) * 2 * kvBytes
	} else if path != "" {
		e.Notes = append(e.Notes, "the model's layer and head counts are unknown: the KV cache is not counted")
	}
	switch {
	case ea.MaxModelLen > 0:
		e.MaxModelLen, e.MaxModelLenFrom = ea.MaxModelLen, "args"
	case ea.MaxModelLen < 0 && shape.maxPos > 0: // the args ask for the model's own
		e.MaxModelLen, e.MaxModelLenFrom = shape.maxPos, "model config"
	case p.DefaultMaxLen > 0:
		e.MaxModelLen, e.MaxModelLenFrom = p.DefaultMaxLen, "engine default"
	case shape.maxPos > 0:
		e.MaxModelLen, e.MaxModelLenFrom = shape.maxPos, "model config"
	}
	e.KVBytes = e.KVBytesPerToken * int64(e.MaxModelLen)
	if len(p.GPULayersFlags) > 0 && shape.layers > 0 {
		e.offload(shape.layers, ea.GPULayers, first(p.GPULayersFlags))
	}
	e.PerGPUBytes = ceilDiv(e.WeightsBytes, int64(e.TP)) + ceilDiv(e.KVBytes, int64(e.TP)) + e.OverheadBytes
	return e
}

// offload keeps on the GPU only what llama.cpp puts there with -ngl:
// of n repeating layers plus the output layer, ngl layers' share of the
// weights, and the KV cache of the repeating layers among them.
func (e *Estimate) offload(n, ngl int, flag string) {
	total := n + 1
	off := total
	if ngl >= 0 {
		off = min(ngl, total)
	}
	e.Layers, e.GPULayers, e.nglFlag = n, off, flag
	e.fullWeights, e.fullKV = e.WeightsBytes, e.KVBytes
	if off == total {
		return
	}
	host := e.WeightsBytes - e.WeightsBytes/int64(total)*int64(off)
	e.WeightsBytes -= host
	e.KVBytes = e.KVBytes / int64(n) * int64(min(off, n))
	e.Notes = append(e.Notes, fmt.Sprintf("%s %d: %d of %d layers on the GPU, %s of weights in host memory", flag, off, off, total, units.GiB(host)))
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// modelShape is what the KV cache estimate needs.
type modelShape struct {
	layers, kvHeads, headDim, maxPos int
}

// hfConfig is the part of a Hugging Face config.json the estimate reads.
type hfConfig struct {
	Layers     int       `json:"num_hidden_layers"`
	Heads      int       `json:"num_attention_heads"`
	KVHeads    int       `json:"num_key_value_heads"`
	Hidden     int       `json:"hidden_size"`
	HeadDim    int       `json:"head_dim"`
	MaxPos     int       `json:"max_position_embeddings"`
	TextConfig *hfConfig `json:"text_config"`
}

func hfShape(dir string, e *Estimate) modelShape {
	e.WeightsBytes, e.WeightsSource = weightsOf(dir)
	if e.WeightsBytes == 0 {
		e.Notes = append(e.Notes, "no weight files found: the weights are not counted")
	}
	raw, err := readModelFile(filepath.Join(dir, "config.json"), maxMetaFile)
	if err != nil {
		return modelShape{}
	}
	var c hfConfig
	if json.Unmarshal(raw, &c) != nil {
		return modelShape{}
	}
	if c.Layers == 0 && c.TextConfig != nil { // multimodal: the language model's shape
		c = *c.TextConfig
	}
	s := modelShape{layers: c.Layers, kvHeads: c.KVHeads, headDim: c.HeadDim, maxPos: c.MaxPos}
	if s.kvHeads == 0 {
		s.kvHeads = c.Heads // no GQA
	}
	if s.headDim == 0 && c.Heads > 0 {
		s.headDim = c.Hidden / c.Heads
	}
	return s
}

// weightsOf sizes the weights: the safetensors index's total_size, else
// the safetensors files, else PyTorch .bin/.pt files.
func weightsOf(dir string) (int64, string) {
	if raw, err := readModelFile(filepath.Join(dir, "model.safetensors.index.json"), maxMetaFile); err == nil {
		var idx struct {
			Metadata struct {
				TotalSize json.Number `json:"total_size"`
			} `json:"metadata"`
		}
		if json.Unmarshal(raw, &idx) == nil {
			if n, err := idx.Metadata.TotalSize.Int64(); err == nil && n > 0 {
				return n, "model.safetensors.index.json total_size"
			}
		}
	}
	for _, ext := range [][]string{{".safetensors"}, {".bin", ".pt", ".pth"}} {
		var sum int64
		var files []string
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			name := en.Name()
			for _, x := range ext {
				if strings.HasSuffix(name, x) && !strings.HasPrefix(name, "training_args") {
					if n, ok := regularSize(filepath.Join(dir, name)); ok {
						sum += n
						files = append(files, name)
					}
				}
			}
		}
		if sum > 0 {
			sort.Strings(files)
			return sum, fmt.Sprintf("%d %s file(s)", len(files), strings.TrimPrefix(ext[0], "."))
		}
	}
	return 0, ""
}

func ggufShape(path string, e *Estimate) modelShape {
	if _, ok := regularSize(path); !ok {
		e.Notes = append(e.Notes, "the GGUF file is not a readable regular file")
		return modelShape{}
	}
	f, err := gguf.ParseGGUFFile(path, gguf.SkipLargeMetadata())
	if err != nil {
		e.Notes = append(e.Notes, "GGUF header unreadable: "+err.Error())
		if n, ok := regularSize(path); ok {
			e.WeightsBytes, e.WeightsSource = n, "GGUF file size"
		}
		return modelShape{}
	}
	e.WeightsBytes, e.WeightsSource = int64(f.ModelSize), "GGUF tensor data"
	a := f.Architecture()
	s := modelShape{layers: int(a.BlockCount), kvHeads: int(a.AttentionHeadCountKV), maxPos: int(a.MaximumContextLength)}
	if s.kvHeads == 0 {
		s.kvHeads = int(a.AttentionHeadCount)
	}
	if a.AttentionKeyLength > 0 {
		s.headDim = int(a.AttentionKeyLength)
	} else if a.AttentionHeadCount > 0 {
		s.headDim = int(a.EmbeddingLength / a.AttentionHeadCount)
	}
	return s
}

func first(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}
