package gpu_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"aima/gpu"
	"aima/internal/testenv"
)

const mib = 1 << 20

// llama.cpp: the KV cache of a Llama-3-8B-shaped GGUF (32 layers, 8 KV
// heads of 128) for -c 4096 is what llama-server logs for it:
// "llama_kv_cache: size =  512.00 MiB (  4096 cells,  32 layers,  1/1 seqs)"
// (engines.md §4.5); -ngl keeps only the offloaded layers' share on the GPU.
func TestFitLlamaCppAgainstItsLog(t *testing.T) {
	t.Parallel()
	path := testenv.MakeGGUF(t, "llama3-8b", testenv.GGUFOptions{Layers: 32, Context: 8192, Embedding: 4096, Heads: 32, KVHeads: 8,
		TensorElements: 33 * 1024 * 1024}) // 132 MiB of weights: 4 MiB per layer
	p := gpu.ProfileFor("llamacpp")
	ea, err := p.Parse([]string{"-c", "4096"})
	if err != nil {
		t.Fatal(err)
	}
	full := estimate(t, path, "gguf", p, ea)
	if full.KVBytes != 512*mib || full.MaxModelLen != 4096 || full.GPULayers != 33 || full.WeightsBytes != 132*mib {
		t.Errorf("all layers on the GPU: KV %d MiB, ctx %d, layers %d, weights %d MiB", full.KVBytes/mib, full.MaxModelLen, full.GPULayers, full.WeightsBytes/mib)
	}
	ea, err = p.Parse([]string{"-c", "4096", "-ngl", "16"})
	if err != nil {
		t.Fatal(err)
	}
	half := estimate(t, path, "gguf", p, ea)
	if half.KVBytes != 256*mib || half.WeightsBytes != 64*mib || half.GPULayers != 16 || !strings.Contains(strings.Join(half.Notes, ";"), "-ngl 16: 16 of 33 layers on the GPU") {
		t.Errorf("-ngl 16: KV %d MiB, weights %d MiB, notes %v", half.KVBytes/mib, half.WeightsBytes/mib, half.Notes)
	}
	if _, err := p.Parse([]string{"-ngl", "lots"}); err == nil {
		t.Error("-ngl lots accepted")
	}
}

// SGLang: K+V per token of a GLM-4-9B-shaped model (40 layers, 2 KV heads
// of 128) is 40960 bytes, so the pool SGLang logged for it, "KV Cache is
// allocated. #tokens: 298447, K size: 5.69 GB, V size: 5.69 GB", is
// 298447 tokens of it; its budget is --mem-fraction-static of the total,
// with no overhead counted inside it.
func TestFitSGLangAgainstItsLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := `{"num_hidden_layers":40,"num_attention_heads":32,"num_key_value_heads":2,"head_dim":128,"hidden_size":4096,"max_position_embeddings":131072}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := gpu.ProfileFor("sglang")
	ea, err := p.Parse([]string{"--context-length", "8192", "--tp-size", "2", "--mem-fraction-static", "0.8"})
	if err != nil {
		t.Fatal(err)
	}
	e := estimate(t, dir, "hf", p, ea)
	if e.KVBytesPerToken != 40960 || e.OverheadBytes != 0 || e.Util != 0.8 || e.TP != 2 || e.MaxModelLen != 8192 {
		t.Errorf("estimate %+v", e)
	}
	if got := float64(298447*e.KVBytesPerToken) / 2 / (1 << 30); got < 5.685 || got > 5.695 {
		t.Errorf("K size of SGLang's logged pool from the estimate: %.3f GiB, SGLang logged 5.69", got)
	}
}

// model_fit's suggestion for llama.cpp names its own flags, as llama-server
// parses them (no "=").
func TestFitLlamaCppSuggestsLayers(t *testing.T) {
	t.Parallel()
	path := testenv.MakeGGUF(t, "big", testenv.GGUFOptions{Layers: 32, Context: 8192, Embedding: 4096, Heads: 32, KVHeads: 8,
		TensorElements: 33 * 1024 * 1024})
	p := gpu.ProfileFor("llamacpp")
	ea, _ := p.Parse([]string{"-c", "4096"})
	e := estimate(t, path, "gguf", p, ea)
	// A GPU of 1 GiB: the 512 MiB overhead and 512 MiB of KV do not fit
	// with the weights; 16 layers (~64 MiB weights + 256 MiB KV) do.
	r := gpu.SuggestForTest(e, 1<<30, 1)
	if !strings.Contains(r.Suggestion, "offload fewer layers with -ngl") || !slices.Contains(r.SuggestedArgs, "-ngl") && !slices.Contains(r.SuggestedArgs, "-c") {
		t.Errorf("suggestion %q args %q", r.Suggestion, r.SuggestedArgs)
	}
	for _, a := range r.SuggestedArgs {
		if strings.HasPrefix(a, "-c=") || strings.HasPrefix(a, "-ngl=") {
			t.Errorf("llama-server does not read %q", a)
		}
	}
}

// model_fit's suggestion for SGLang names SGLang's flags.
func TestFitSGLangSuggestsItsFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := `{"num_hidden_layers":40,"num_attention_heads":32,"num_key_value_heads":8,"head_dim":128,"hidden_size":4096,"max_position_embeddings":131072}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// 20 GiB of weights (the index's total_size), 160 KiB of KV per token.
	idx := `{"metadata":{"total_size":21474836480}}`
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(idx), 0o644); err != nil {
		t.Fatal(err)
	}
	p := gpu.ProfileFor("sglang")
	ea, _ := p.Parse(nil)
	e := estimate(t, dir, "hf", p, ea)
	// A 40 GiB GPU: 0.88 × 40 = 35.2 GiB for weights and a 131072-token pool (20 GiB) does not fit.
	r := gpu.SuggestForTest(e, 40<<30, 2)
	if !strings.Contains(r.Suggestion, "--context-length") || !strings.Contains(r.Suggestion, "--tp-size 2") || len(r.SuggestedArgs) == 0 || !strings.HasPrefix(r.SuggestedArgs[0], "--context-length=") {
		t.Errorf("suggestion %q args %q", r.Suggestion, r.SuggestedArgs)
	}
}

// llama.cpp's -c 0 asks for the model's own context: accepted, and the KV
// cache counted for the GGUF's context_length.
func TestFitLlamaCppContextZero(t *testing.T) {
	t.Parallel()
	path := testenv.MakeGGUF(t, "ctx0", testenv.GGUFOptions{Layers: 32, Context: 8192, Embedding: 4096, Heads: 32, KVHeads: 8})
	p := gpu.ProfileFor("llamacpp")
	ea, err := p.Parse([]string{"-c", "0"})
	if err != nil {
		t.Fatalf("-c 0 refused: %v", err)
	}
	e := estimate(t, path, "gguf", p, ea)
	if e.MaxModelLen != 8192 || e.MaxModelLenFrom != "model config" || e.KVBytes != 1024*mib {
		t.Errorf("-c 0: ctx %d from %q, KV %d MiB; want 8192 from the model, 1024 MiB", e.MaxModelLen, e.MaxModelLenFrom, e.KVBytes/mib)
	}
	if _, err := gpu.ProfileFor("vllm").Parse([]string{"--max-model-len", "0"}); err == nil {
		t.Error("vLLM's --max-model-len 0 accepted")
	}
}

// estimate is gpu.EstimateModel for files that are a model's.
func estimate(t *testing.T, path, format string, p gpu.Profile, ea gpu.EngineArgs) gpu.Estimate {
	t.Helper()
	e, err := gpu.EstimateModel(path, format, p, ea)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
