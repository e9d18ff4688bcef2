package gpu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aima/errs"
)

// Meta-Llama-3-8B-Instruct: vLLM logs "Loading model weights took 14.9595
// GB" (GiB) for it; the estimate reads the index's total_size.
func TestEstimateWeightsMatchVLLM(t *testing.T) {
	p := ProfileFor("vllm")
	ea, err := p.Parse([]string{"--max-model-len", "8192"})
	if err != nil {
		t.Fatal(err)
	}
	e := mustEstimate(t, "testdata/models/llama-3-8b-instruct", "hf", p, ea)
	if e.WeightsBytes != 16060522496 || e.WeightsSource != "model.safetensors.index.json total_size" {
		t.Fatalf("weights %d from %q", e.WeightsBytes, e.WeightsSource)
	}
	if got := float64(e.WeightsBytes) / float64(gib); math.Abs(got-14.9595)/14.9595 > 0.005 {
		t.Errorf("weights %.4f GiB, vLLM loads 14.9595 GiB", got)
	}
	// 32 layers × 8 KV heads × 128 head dim × 2 (K, V) × 2 bytes (bf16).
	if e.KVBytesPerToken != 131072 {
		t.Errorf("KV per token %d, want 131072", e.KVBytesPerToken)
	}
	if e.MaxModelLen != 8192 || e.KVBytes != 8192*131072 || e.Util != 0.9 || e.Fraction != 1 {
		t.Errorf("estimate %+v", e)
	}
	if want := e.WeightsBytes + e.KVBytes + e.OverheadBytes; e.PerGPUBytes != want {
		t.Errorf("per GPU %d, want %d", e.PerGPUBytes, want)
	}
	tp2, _ := p.Parse([]string{"-tp", "2", "--gpu-memory-utilization=0.45"})
	e2 := mustEstimate(t, "testdata/models/llama-3-8b-instruct", "hf", p, tp2)
	if e2.TP != 2 || e2.Fraction != 0.45 || e2.PerGPUBytes != e2.WeightsBytes/2+e2.KVBytes/2+e2.OverheadBytes {
		t.Errorf("TP 2 estimate %+v", e2)
	}
	if !strings.Contains(e.Text(), "KV cache 1.0 GiB for 8192 tokens") {
		t.Errorf("text %q", e.Text())
	}
}

// TinyLlama-1.1B: vLLM logged "Available KV cache memory: 33.31 GiB" and
// "GPU KV cache size: 1,587,648 tokens" (and "Maximum concurrency for 2,048
// tokens per request: 775.22x"), i.e. 22,528 bytes per token.
func TestEstimateKVPerTokenMatchesVLLM(t *testing.T) {
	p := ProfileFor("vllm")
	e := mustEstimate(t, "testdata/models/tinyllama-1.1b-chat", "hf", p, EngineArgs{TP: 1})
	if e.KVBytesPerToken != 22528 {
		t.Fatalf("KV per token %d, want 22528", e.KVBytesPerToken)
	}
	tokens := 33.31 * float64(gib) / float64(e.KVBytesPerToken)
	if math.Abs(tokens-1587648)/1587648 > 0.001 {
		t.Errorf("33.31 GiB holds %.0f tokens by the estimate; vLLM reported 1,587,648", tokens)
	}
	if e.MaxModelLen != 2048 || e.MaxModelLenFrom != "model config" {
		t.Errorf("max model len %d from %q", e.MaxModelLen, e.MaxModelLenFrom)
	}
	if e.WeightsBytes != 0 || len(e.Notes) == 0 {
		t.Errorf("no weight files: weights %d, notes %v", e.WeightsBytes, e.Notes)
	}
}

func TestEstimateWeightFilesAndRemote(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"text_config":{"num_hidden_layers":2,"num_attention_heads":4,"hidden_size":256,"max_position_embeddings":1024}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), make([]byte, 3000), 0o644)
	os.WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), make([]byte, 1000), 0o644)
	os.WriteFile(filepath.Join(dir, "training_args.bin"), make([]byte, 99), 0o644)
	e := mustEstimate(t, dir, "hf", ProfileFor("vllm"), EngineArgs{TP: 1, KVCacheType: "fp8"})
	if e.WeightsBytes != 4000 || e.WeightsSource != "2 safetensors file(s)" {
		t.Errorf("weights %d from %q", e.WeightsBytes, e.WeightsSource)
	}
	// multimodal text_config: 2 layers × 4 heads (no GQA) × 64 × 2 × 1 (fp8)
	if e.KVBytesPerToken != 2*4*64*2 || e.MaxModelLen != 1024 {
		t.Errorf("KV %d, max len %d", e.KVBytesPerToken, e.MaxModelLen)
	}
	r := mustEstimate(t, "", "", ProfileFor("vllm"), EngineArgs{TP: 1})
	if r.PerGPUBytes != r.OverheadBytes || len(r.Notes) == 0 {
		t.Errorf("remote estimate %+v", r)
	}
}

func TestEstimateRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := mkfifo(filepath.Join(dir, "config.json")); err != nil {
		t.Skip("no mkfifo:", err)
	}
	done := make(chan Estimate, 1)
	go func() { e, _ := EstimateModel(dir, "hf", ProfileFor("vllm"), EngineArgs{TP: 1}); done <- e }()
	e := <-done // a blocking open of the FIFO would hang here
	if e.KVBytesPerToken != 0 {
		t.Errorf("%+v", e)
	}
	if _, err := readModelFile(filepath.Join(dir, "config.json"), 10); err == nil {
		t.Error("FIFO read")
	}
}

func TestEstimateGGUF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	writeGGUF(t, path)
	p := ProfileFor("llamacpp")
	ea, err := p.Parse([]string{"-c", "8192"})
	if err != nil {
		t.Fatal(err)
	}
	e := mustEstimate(t, path, "gguf", p, ea)
	if e.WeightsBytes != 4096*4 || e.WeightsSource != "GGUF tensor data" {
		t.Errorf("weights %d from %q (notes %v)", e.WeightsBytes, e.WeightsSource, e.Notes)
	}
	if e.KVBytesPerToken != 22528 || e.MaxModelLen != 8192 || e.Util != 0 || e.Fraction != 1 {
		t.Errorf("estimate %+v", e)
	}
}

func TestParseEngineArgs(t *testing.T) {
	p := ProfileFor("vllm")
	ea, err := p.Parse([]string{"--model", "/m", "--tensor-parallel-size=4", "--gpu-memory-utilization", "0.45", "--max-model-len=32k"})
	if err != nil || ea.TP != 4 || ea.Util != 0.45 || ea.MaxModelLen != 32768 {
		t.Errorf("%+v %v", ea, err)
	}
	for _, bad := range [][]string{{"-tp", "0"}, {"--gpu-memory-utilization", "1.5"}, {"--max-model-len", "x"}} {
		if _, err := p.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	s, err := ProfileFor("sglang").Parse([]string{"--tp", "2", "--mem-fraction-static", "0.7"})
	if err != nil || s.TP != 2 || s.Util != 0.7 {
		t.Errorf("sglang %+v %v", s, err)
	}
}

// writeGGUF writes a minimal GGUF v3 file: llama metadata shaped like
// TinyLlama and one F32 tensor of 4096 elements.
func writeGGUF(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, ggufBytes(tinyLlamaKVs()), 0o644); err != nil {
		t.Fatal(err)
	}
}

type ggufKV struct {
	k string
	v any // string, uint32 or uint64
}

func tinyLlamaKVs() []ggufKV {
	return []ggufKV{
		{"general.architecture", "llama"}, {"general.name", "tiny"},
		{"llama.block_count", uint32(22)}, {"llama.context_length", uint32(2048)},
		{"llama.embedding_length", uint32(2048)}, {"llama.attention.head_count", uint32(32)},
		{"llama.attention.head_count_kv", uint32(4)}, {"llama.feed_forward_length", uint32(5632)},
	}
}

// ggufBytes is a GGUF v3 file with the metadata kvs and one F32 tensor of
// 4096 elements.
func ggufBytes(kvs []ggufKV) []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { w(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	w(uint32(3))
	w(uint64(1)) // tensors
	w(uint64(len(kvs)))
	for _, kv := range kvs {
		str(kv.k)
		switch v := kv.v.(type) {
		case string:
			w(uint32(8))
			str(v)
		case uint32:
			w(uint32(4))
			w(v)
		case uint64:
			w(uint32(10))
			w(v)
		}
	}
	str("token_embd.weight")
	w(uint32(1))
	w(uint64(4096))
	w(uint32(0)) // F32
	w(uint64(0))
	for b.Len()%32 != 0 {
		b.WriteByte(0)
	}
	b.Write(make([]byte, 4096*4))
	return b.Bytes()
}

// nestedArrayGGUF is the 65-byte file of the reproduction: one metadata
// key holding an array of arrays (which llama.cpp refuses to load and the
// parser panicked on).
func nestedArrayGGUF() []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("GGUF")
	w(uint32(3))
	w(uint64(0)) // tensors
	w(uint64(1)) // metadata keys
	w(uint64(1))
	b.WriteString("x")
	w(uint32(9)) // array
	w(uint32(9)) // of arrays
	w(uint64(1))
	w(uint32(4)) // of uint32
	w(uint64(1))
	b.Write(make([]byte, 4))
	return b.Bytes()
}

// A GGUF header the parser panics on is noted as unreadable, like a
// truncated one: the estimate counts the file's size and goes on.
func TestEstimateGGUFParserPanics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nest1.gguf")
	if err := os.WriteFile(path, nestedArrayGGUF(), 0o644); err != nil {
		t.Fatal(err)
	}
	e := mustEstimate(t, path, "gguf", ProfileFor("llamacpp"), EngineArgs{TP: 1})
	if e.WeightsBytes != 65 || e.WeightsSource != "GGUF file size" || len(e.Notes) == 0 || !strings.Contains(e.Notes[0], "GGUF header unreadable") {
		t.Errorf("estimate %+v", e)
	}
}

// Figures a model cannot have are refused, naming the file and the field;
// absent ones are notes; large plausible ones saturate instead of wrapping.
func TestEstimateRefusesImpossibleShapes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ config, key string }{
		{`{"num_hidden_layers":4000000000,"num_attention_heads":32,"hidden_size":4096}`, "num_hidden_layers"},
		{`{"num_hidden_layers":32,"num_key_value_heads":-8,"num_attention_heads":32,"hidden_size":4096}`, "num_key_value_heads"},
		{`{"num_hidden_layers":32,"num_attention_heads":32,"head_dim":4e9}`, "head_dim"},
		{`{"num_hidden_layers":1e308,"num_attention_heads":32,"hidden_size":4096}`, "num_hidden_layers"},
		{`{"num_hidden_layers":32.5,"num_attention_heads":32,"hidden_size":4096}`, "num_hidden_layers"},
		{`{"num_hidden_layers":0,"text_config":{"num_hidden_layers":32,"num_attention_heads":100000,"hidden_size":4096}}`, "num_attention_heads"},
		{`{"num_hidden_layers":32,"max_position_embeddings":1e18}`, "max_position_embeddings"},
		{`{"num_hidden_layers":`, "(document)"},
	} {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := EstimateModel(dir, "hf", ProfileFor("vllm"), EngineArgs{TP: 1})
		var bad *BadModelError
		if !errs.Is(err, errs.InvalidArgument) || !errors.As(err, &bad) || bad.File != "config.json" || bad.Key != tc.key {
			t.Errorf("%s: estimate %+v, error %v; want invalid_argument naming config.json %s", tc.config, e, err, tc.key)
		}
	}

	// 0 is how some configs leave a figure unset: absent, not refused.
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"num_hidden_layers":2,"num_key_value_heads":0,"num_attention_heads":4,"hidden_size":256}`), 0o644)
	if e := mustEstimate(t, dir, "hf", ProfileFor("vllm"), EngineArgs{TP: 1}); e.KVBytesPerToken != 2*4*64*2*2 {
		t.Errorf("num_key_value_heads 0: %+v", e)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"num_hidden_layers":4096,"num_key_value_heads":4096,"head_dim":65536,"num_attention_heads":4096}`), 0o644)
	e := mustEstimate(t, dir, "hf", ProfileFor("vllm"), EngineArgs{TP: 1, MaxModelLen: MaxModelLen})
	if e.KVBytesPerToken != 4096*4096*65536*2*2 || e.KVBytes != math.MaxInt64 || e.PerGPUBytes != math.MaxInt64 {
		t.Errorf("saturating estimate %+v", e)
	}

	path := filepath.Join(dir, "huge.gguf")
	kvs := append(tinyLlamaKVs()[:2], ggufKV{"llama.block_count", uint64(1) << 40}, ggufKV{"llama.attention.head_count", uint32(32)})
	os.WriteFile(path, ggufBytes(kvs), 0o644)
	_, err := EstimateModel(path, "gguf", ProfileFor("llamacpp"), EngineArgs{TP: 1})
	var bad *BadModelError
	if !errors.As(err, &bad) || bad.File != "huge.gguf" || bad.Key != "llama.block_count" {
		t.Errorf("GGUF with 2^40 blocks: %v", err)
	}
}
