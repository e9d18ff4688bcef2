package gpu

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	gguf "github.com/gpustack/gguf-parser-go"

	"aima/errs"
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
// note. Files are read through readModelFile. A figure the estimate needs
// that is absent is a note ("the KV cache is not counted"); one that
// cannot be a model's (a negative, fractional or absurd layer count, head
// count or size) is an InvalidArgument error wrapping a *BadModelError that
// names the file and the field. The arithmetic saturates: a model too
// large to count is "more than any GPU holds", never a wrapped "fits".
func EstimateModel(path, format string, p Profile, ea EngineArgs) (Estimate, error) {
	e := Estimate{TP: max(1, ea.TP), Util: ea.Util, Fraction: ea.Fraction(), OverheadBytes: p.Overhead,
		utilFlag: first(p.UtilFlags), maxLenFlag: first(p.MaxLenFlags), tpFlag: first(p.TPFlags)}
	if e.Util == 0 {
		e.Util = p.DefaultUtil
	}
	var shape modelShape
	var err error
	switch {
	case path == "":
		e.Notes = append(e.Notes, "model is a remote reference: its size is unknown, only the overhead is counted")
	case format == "gguf" || strings.EqualFold(filepath.Ext(path), ".gguf"):
		shape, err = ggufShape(path, &e)
	default:
		shape, err = hfShape(path, &e)
	}
	if err != nil {
		return Estimate{}, &errs.Error{Kind: errs.InvalidArgument, Field: "model_id", Err: err}
	}
	kvBytes := int64(2)
	if strings.Contains(strings.ToLower(ea.KVCacheType), "fp8") || strings.Contains(strings.ToLower(ea.KVCacheType), "q8") {
		kvBytes = 1
	}
	if shape.layers > 0 && shape.kvHeads > 0 && shape.headDim > 0 {
		e.KVBytesPerToken = satMul(satMul(satMul(shape.layers, shape.kvHeads), satMul(shape.headDim, 2)), kvBytes)
	} else if path != "" {
		e.Notes = append(e.Notes, "the model's layer and head counts are unknown: the KV cache is not counted")
	}
	switch {
	case ea.MaxModelLen > 0:
		e.MaxModelLen, e.MaxModelLenFrom = ea.MaxModelLen, "args"
	case ea.MaxModelLen < 0 && shape.maxPos > 0: // the args ask for the model's own
		e.MaxModelLen, e.MaxModelLenFrom = int(shape.maxPos), "model config"
	case p.DefaultMaxLen > 0:
		e.MaxModelLen, e.MaxModelLenFrom = p.DefaultMaxLen, "engine default"
	case shape.maxPos > 0:
		e.MaxModelLen, e.MaxModelLenFrom = int(shape.maxPos), "model config"
	}
	e.KVBytes = satMul(e.KVBytesPerToken, int64(e.MaxModelLen))
	if len(p.GPULayersFlags) > 0 && shape.layers > 0 {
		e.offload(int(shape.layers), ea.GPULayers, first(p.GPULayersFlags))
	}
	e.PerGPUBytes = satAdd(satAdd(ceilDiv(e.WeightsBytes, int64(e.TP)), ceilDiv(e.KVBytes, int64(e.TP))), e.OverheadBytes)
	return e, nil
}

// offload keeps on the GPU only what llama.cpp puts there with -ngl:
// of n repeating layers plus the output layer, ngl layers' share of the
// weights, and the KV cache of the repeating layers among them. Each
// product divides first, so it never overflows.
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

// ceilDiv is a/b rounded up, for non-negative a and positive b, without
// the overflow of (a+b-1)/b near math.MaxInt64.
func ceilDiv(a, b int64) int64 { return a/b + min(a%b, 1) }

// satMul and satAdd are products and sums of non-negative sizes that stop
// at math.MaxInt64 instead of wrapping.
func satMul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// modelShape is what the KV cache estimate needs; 0 is unknown.
type modelShape struct {
	layers, kvHeads, headDim, maxPos int64
}

// BadModelError is a figure in a model's files that no model can have.
type BadModelError struct {
	File  string `json:"file"`  // config.json, or the GGUF file's name
	Key   string `json:"key"`   // num_hidden_layers, llama.block_count, ...
	Value string `json:"value"` // as written in the file
	Want  string `json:"want"`  // the range a model's value lies in
}

func (e *BadModelError) Error() string {
	return fmt.Sprintf("%s: %s is %s: want %s", e.File, e.Key, e.Value, e.Want)
}

// Plausible bounds of a model's shape: generous (ten times or more the
// largest models published), so only files that cannot be a model's fail
// them, and small enough that the KV cache product of all of them fits in
// an int64.
const (
	maxLayers  = 4096
	maxHeads   = 4096
	maxHeadDim = 65536
	maxHidden  = 1 << 20
)

// hfConfig is the part of a Hugging Face config.json the estimate reads.
// The figures are read as JSON numbers so that a negative, fractional or
// huge value is seen and refused rather than failing the whole decode.
type hfConfig struct {
	Layers     *json.Number `json:"num_hidden_layers"`
	Heads      *json.Number `json:"num_attention_heads"`
	KVHeads    *json.Number `json:"num_key_value_heads"`
	Hidden     *json.Number `json:"hidden_size"`
	HeadDim    *json.Number `json:"head_dim"`
	MaxPos     *json.Number `json:"max_position_embeddings"`
	TextConfig *hfConfig    `json:"text_config"`
}

func hfShape(dir string, e *Estimate) (modelShape, error) {
	e.WeightsBytes, e.WeightsSource = weightsOf(dir)
	if e.WeightsBytes == 0 {
		e.Notes = append(e.Notes, "no weight files found: the weights are not counted")
	}
	raw, err := readModelFile(filepath.Join(dir, "config.json"), maxMetaFile)
	if err != nil {
		return modelShape{}, nil
	}
	var c hfConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return modelShape{}, &BadModelError{File: "config.json", Key: "(document)", Value: "not valid JSON", Want: "a JSON object (" + err.Error() + ")"}
	}
	if (c.Layers == nil || c.Layers.String() == "0") && c.TextConfig != nil { // multimodal: the language model's shape
		c = *c.TextConfig
	}
	v := shapeCheck{file: "config.json"}
	s := modelShape{
		layers: v.count("num_hidden_layers", c.Layers, maxLayers), kvHeads: v.count("num_key_value_heads", c.KVHeads, maxHeads),
		headDim: v.count("head_dim", c.HeadDim, maxHeadDim), maxPos: v.count("max_position_embeddings", c.MaxPos, MaxModelLen),
	}
	heads, hidden := v.count("num_attention_heads", c.Heads, maxHeads), v.count("hidden_size", c.Hidden, maxHidden)
	if v.err != nil {
		return modelShape{}, v.err
	}
	if s.kvHeads == 0 {
		s.kvHeads = heads // no GQA
	}
	if s.headDim == 0 && heads > 0 {
		s.headDim = hidden / heads
	}
	return s, nil
}

// shapeCheck reads a model's shape figures, keeping the first that is
// present but cannot be a model's.
type shapeCheck struct {
	file string
	err  *BadModelError
}

// count is a whole number in [1, hi]; 0 when absent, written as 0 (as
// some configs do for what they leave unset), or after a refusal.
func (c *shapeCheck) count(key string, n *json.Number, hi int64) int64 {
	if n == nil || c.err != nil {
		return 0
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err == nil && v == 0 {
		return 0
	}
	if err != nil || v < 1 || v > hi {
		c.err = &BadModelError{File: c.file, Key: key, Value: clip(n.String()), Want: fmt.Sprintf("a whole number from 1 to %d", hi)}
		return 0
	}
	return v
}

// uint is count for a figure a GGUF header holds as an unsigned integer
// (0 is absent there).
func (c *shapeCheck) uint(key string, v, hi uint64) int64 {
	if v == 0 || c.err != nil {
		return 0
	}
	if v > hi {
		c.err = &BadModelError{File: c.file, Key: key, Value: strconv.FormatUint(v, 10), Want: fmt.Sprintf("a whole number from 1 to %d", hi)}
		return 0
	}
	return int64(v)
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
						sum = satAdd(sum, n)
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

// ggufShape reads a GGUF header. The parser (gguf-parser-go) panics on
// some malformed headers (an array of arrays, an unknown tensor type, a
// size that overflows); a panic here is a header the estimate cannot
// read, noted like a truncated file, never a crash of the caller.
func ggufShape(path string, e *Estimate) (modelShape, error) {
	if _, ok := regularSize(path); !ok {
		e.Notes = append(e.Notes, "the GGUF file is not a readable regular file")
		return modelShape{}, nil
	}
	f, a, err := parseGGUF(path)
	if err != nil {
		e.Notes = append(e.Notes, "GGUF header unreadable: "+err.Error())
		if n, ok := regularSize(path); ok {
			e.WeightsBytes, e.WeightsSource = n, "GGUF file size"
		}
		return modelShape{}, nil
	}
	v := shapeCheck{file: filepath.Base(path)}
	arch := a.Architecture
	s := modelShape{
		layers: v.uint(arch+".block_count", a.BlockCount, maxLayers), kvHeads: v.uint(arch+".attention.head_count_kv", a.AttentionHeadCountKV, maxHeads),
		headDim: v.uint(arch+".attention.key_length", uint64(a.AttentionKeyLength), maxHeadDim), maxPos: v.uint(arch+".context_length", a.MaximumContextLength, MaxModelLen),
	}
	heads, hidden := v.uint(arch+".attention.head_count", a.AttentionHeadCount, maxHeads), v.uint(arch+".embedding_length", a.EmbeddingLength, maxHidden)
	if uint64(f.ModelSize) > math.MaxInt64 {
		v.err = &BadModelError{File: v.file, Key: "tensor data size", Value: strconv.FormatUint(uint64(f.ModelSize), 10), Want: "a size in bytes below 2^63"}
	}
	if v.err != nil {
		return modelShape{}, v.err
	}
	e.WeightsBytes, e.WeightsSource = int64(f.ModelSize), "GGUF tensor data"
	if s.kvHeads == 0 {
		s.kvHeads = heads
	}
	if s.headDim == 0 && heads > 0 {
		s.headDim = hidden / heads
	}
	return s, nil
}

// parseGGUF runs the GGUF parser, turning its panics into an error.
func parseGGUF(path string) (f *gguf.GGUFFile, a gguf.GGUFArchitecture, err error) {
	defer func() {
		if v := recover(); v != nil {
			f, err = nil, fmt.Errorf("the parser refused it (%v)", v)
		}
	}()
	f, err = gguf.ParseGGUFFile(path, gguf.SkipLargeMetadata())
	if err != nil {
		return nil, a, err
	}
	return f, f.Architecture(), nil
}

func first(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}
