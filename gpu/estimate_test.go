package gpu

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Meta-Llama-3-8B-Instruct: vLLM logs "Loading model weights took 14.9595
// GB" (GiB) for it; the estimate reads the index's total_size.
func TestEstimateWeightsMatchVLLM(t *testing.T) {
	p := ProfileFor("vllm")
	ea, err := p.Parse([]string{"--max-model-len", "8192"})
	if err != nil {
		t.Fatal(err)
	}
	e := EstimateModel("testdata/models/llama-3-8b-instruct", "hf", p, ea)
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
	e2 := EstimateModel("testdata/models/llama-3-8b-instruct", "hf", p, tp2)
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
	e := EstimateModel("testdata/models/tinyllama-1.1b-chat", "hf", p, EngineArgs{TP: 1})
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
	e := EstimateModel(dir, "hf", ProfileFor("vllm"), EngineArgs{TP: 1, KVCacheType: "fp8"})
	if e.WeightsBytes != 4000 || e.WeightsSource != "2 safetensors file(s)" {
		t.Errorf("weights %d from %q", e.WeightsBytes, e.WeightsSource)
	}
	// multimodal text_config: 2 layers × 4 heads (no GQA) × 64 × 2 × 1 (fp8)
	if e.KVBytesPerToken != 2*4*64*2 || e.MaxModelLen != 1024 {
		t.Errorf("KV %d, max len %d", e.KVBytesPerToken, e.MaxModelLen)
	}
	r := EstimateModel("", "", ProfileFor("vllm"), EngineArgs{TP: 1})
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
	go func() { done <- EstimateModel(dir, "hf", ProfileFor("vllm"), EngineArgs{TP: 1}) }()
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
	e := EstimateModel(path, "gguf", p, ea)
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
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { w(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	w(uint32(3))
	w(uint64(1)) // tensors
	kvs := []struct {
		k string
		v any
	}{
		{"general.architecture", "llama"}, {"general.name", "tiny"},
		{"llama.block_count", uint32(22)}, {"llama.context_length", uint32(2048)},
		{"llama.embedding_length", uint32(2048)}, {"llama.attention.head_count", uint32(32)},
		{"llama.attention.head_count_kv", uint32(4)}, {"llama.feed_forward_length", uint32(5632)},
	}
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
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Every comparison with NaN is false: a range check must be written so
// that NaN fails it. Sizes that would wrap when multiplied are refused.
func TestParseEngineArgsRefusesNaNAndWraps(t *testing.T) {
	for _, bad := range [][]string{
		{"--gpu-memory-utilization=NaN"}, {"--gpu-memory-utilization", "nan"}, {"--gpu-memory-utilization=+Inf"},
		{"--gpu-memory-utilization=-0"}, {"--max-model-len=9007199254740993k"}, {"--max-model-len=-18014398509480960k"},
		{"--max-model-len=134217729"},
	} {
		if ea, err := ProfileFor("vllm").Parse(bad); err == nil {
			t.Errorf("%v accepted as %+v", bad, ea)
		}
	}
	if _, err := ProfileFor("sglang").Parse([]string{"--mem-fraction-static=NaN"}); err == nil {
		t.Error("sglang --mem-fraction-static=NaN accepted")
	}
	if ea, err := ProfileFor("vllm").Parse([]string{"--max-model-len=128k"}); err != nil || ea.MaxModelLen != 131072 {
		t.Errorf("128k: %+v %v", ea, err)
	}
}
