package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// modelInfo is what the simulator learns about the model. It only drives
// realistic log numbers (architecture, context length, weight size, KV cache
// size); no weights are ever read.
type modelInfo struct {
	Dir        string // resolved local directory ("" for a GGUF file or unchecked id)
	Arch       string
	TorchDtype string
	MaxPos     int
	// Attention geometry, for KV-cache bytes per token.
	Layers, KVHeads, HeadDim int
	SizeGiB                  float64
	Shards                   int
	GGUF                     bool
	GenerationConfig         bool // generation_config.json present: vLLM warns about sampling defaults
}

// hfConfig is the subset of a Hugging Face config.json the simulator reads.
type hfConfig struct {
	Architectures    []string `json:"architectures"`
	TorchDtype       string   `json:"torch_dtype"`
	Dtype            string   `json:"dtype"` // newer transformers write "dtype"
	MaxPos           int      `json:"max_position_embeddings"`
	Layers           int      `json:"num_hidden_layers"`
	Heads            int      `json:"num_attention_heads"`
	KVHeads          int      `json:"num_key_value_heads"`
	Hidden           int      `json:"hidden_size"`
	HeadDim          int      `json:"head_dim"`
	Intermediate     int      `json:"intermediate_size"`
	Vocab            int      `json:"vocab_size"`
	TieWordEmbedding bool     `json:"tie_word_embeddings"`
}

// resolveModel finds the model the way vLLM would offline: an existing local
// directory with config.json (or Mistral's params.json), a .gguf file, or a
// Hugging Face repo id already in the HF cache. ok=false means vLLM's
// "Invalid repository ID or local directory specified" failure. With
// --sim-model-check off every model is accepted.
func resolveModel(o *options, getenv func(string) (string, bool)) (info *modelInfo, ok bool) {
	info = &modelInfo{}
	m := o.Model
	if st, err := os.Stat(m); err == nil {
		switch {
		case st.IsDir() && (exists(filepath.Join(m, "config.json")) || exists(filepath.Join(m, "params.json"))):
			info.Dir, ok = m, true
		case !st.IsDir() && strings.HasSuffix(strings.ToLower(m), ".gguf"):
			info.GGUF, ok = true, true
			info.SizeGiB = float64(st.Size()) / gib
		}
	} else if !strings.HasPrefix(m, "/") && !strings.HasPrefix(m, ".") {
		if dir := findInHFCache(m, hfCacheDirs(o, getenv)); dir != "" {
			info.Dir, ok = dir, true
		}
	}
	if !o.ModelCheck {
		ok = true
	}
	info.fill(o)
	return info, ok
}

// hfCacheDirs lists where huggingface_hub keeps its cache, in its own order.
func hfCacheDirs(o *options, getenv func(string) (string, bool)) []string {
	if o.HFCache != "" {
		return []string{o.HFCache}
	}
	var dirs []string
	if v, ok := getenv("HF_HUB_CACHE"); ok && v != "" {
		dirs = append(dirs, v)
	}
	if v, ok := getenv("HF_HOME"); ok && v != "" {
		dirs = append(dirs, filepath.Join(v, "hub"))
	}
	if v, ok := getenv("HOME"); ok && v != "" {
		dirs = append(dirs, filepath.Join(v, ".cache", "huggingface", "hub"))
	}
	return append(dirs, "/root/.cache/huggingface/hub")
}

// findInHFCache looks for models--ORG--NAME/snapshots/*/config.json.
func findInHFCache(repo string, dirs []string) string {
	if strings.Count(repo, "/") > 1 || strings.ContainsAny(repo, " *?[") {
		return ""
	}
	name := "models--" + strings.ReplaceAll(repo, "/", "--")
	for _, d := range dirs {
		hits, _ := filepath.Glob(filepath.Join(d, name, "snapshots", "*", "config.json"))
		if len(hits) > 0 {
			return filepath.Dir(hits[0])
		}
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

const gib = 1 << 30

// fill reads config.json and the weight files (when there is a directory)
// and falls back to an 8B-class bf16 model for anything unknown.
func (mi *modelInfo) fill(o *options) {
	var c hfConfig
	if mi.Dir != "" {
		if b, err := os.ReadFile(filepath.Join(mi.Dir, "config.json")); err == nil {
			_ = json.Unmarshal(b, &c) // a malformed config only loses realism
		}
		mi.GenerationConfig = exists(filepath.Join(mi.Dir, "generation_config.json"))
		var total int64
		for _, pat := range []string{"*.safetensors", "*.bin", "*.pt", "*.gguf"} {
			files, _ := filepath.Glob(filepath.Join(mi.Dir, pat))
			if pat == "*.safetensors" {
				mi.Shards = len(files)
			}
			for _, f := range files {
				if st, err := os.Stat(f); err == nil {
					total += st.Size()
				}
			}
		}
		mi.SizeGiB = float64(total) / gib
	}
	mi.Arch = "LlamaForCausalLM"
	if len(c.Architectures) > 0 && c.Architectures[0] != "" {
		mi.Arch = c.Architectures[0]
	}
	mi.TorchDtype = firstNonEmpty(c.TorchDtype, c.Dtype, "bfloat16")
	mi.MaxPos = c.MaxPos
	if mi.MaxPos <= 0 {
		mi.MaxPos = 32768
	}
	mi.Layers, mi.KVHeads, mi.HeadDim = c.Layers, c.KVHeads, c.HeadDim
	if mi.KVHeads <= 0 {
		mi.KVHeads = c.Heads
	}
	if mi.HeadDim <= 0 && c.Hidden > 0 && c.Heads > 0 {
		mi.HeadDim = c.Hidden / c.Heads
	}
	if mi.Layers <= 0 || mi.KVHeads <= 0 || mi.HeadDim <= 0 {
		mi.Layers, mi.KVHeads, mi.HeadDim = 32, 8, 128
	}
	if mi.SizeGiB <= 0 && c.Hidden > 0 && c.Layers > 0 && c.Vocab > 0 && c.Intermediate > 0 {
		params := float64(c.Layers) * (4*float64(c.Hidden)*float64(c.Hidden) + 3*float64(c.Hidden)*float64(c.Intermediate))
		emb := float64(c.Vocab) * float64(c.Hidden)
		if !c.TieWordEmbedding {
			emb *= 2
		}
		mi.SizeGiB = (params + emb) * 2 / gib
	}
	if o.ModelSizeGiB > 0 {
		mi.SizeGiB = o.ModelSizeGiB
	}
	if mi.SizeGiB <= 0 {
		mi.SizeGiB = 14.99
	}
	if mi.Shards <= 0 {
		mi.Shards = int(math.Max(1, math.Ceil(mi.SizeGiB/4.6)))
	}
}

// dtype is the torch dtype vLLM runs with: --dtype, else the config's
// half-precision type (fp32 checkpoints are served in bf16).
func (mi *modelInfo) dtype(o *options) string {
	switch o.Dtype {
	case "half", "float16":
		return "float16"
	case "bfloat16":
		return "bfloat16"
	case "float", "float32":
		return "float32"
	}
	if mi.TorchDtype == "float16" {
		return "float16"
	}
	return "bfloat16"
}

// kvBytesPerToken is K+V for every layer, in the model dtype (2 bytes).
func (mi *modelInfo) kvBytesPerToken() float64 {
	return float64(2 * mi.Layers * mi.KVHeads * mi.HeadDim * 2)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
