package testenv

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// GGUFOptions shapes the model file MakeGGUF writes.
type GGUFOptions struct {
	Arch    string // general.architecture (default llama)
	Layers  uint32 // block_count (default 22)
	Context uint32 // context_length (default 2048)
	// TensorElements is the size of the one F32 tensor (default 4096), so
	// the weights are 4 × TensorElements bytes.
	TensorElements uint64
	// Attention shape (defaults 2048, 32 heads, 4 KV heads: head dim 64).
	Embedding, Heads, KVHeads uint32
}

// MakeGGUF writes a minimal GGUF v3 model file named name+".gguf" in a
// temporary directory (metadata shaped like TinyLlama: 32 heads, 4 KV
// heads, embedding 2048; one F32 tensor) and returns its path.
func MakeGGUF(t testing.TB, name string, o GGUFOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".gguf")
	if err := os.WriteFile(path, GGUFBytes(o), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// GGUFBytes is the content MakeGGUF writes.
func GGUFBytes(o GGUFOptions) []byte {
	if o.Arch == "" {
		o.Arch = "llama"
	}
	if o.Layers == 0 {
		o.Layers = 22
	}
	if o.Context == 0 {
		o.Context = 2048
	}
	if o.TensorElements == 0 {
		o.TensorElements = 4096
	}
	if o.Embedding == 0 {
		o.Embedding = 2048
	}
	if o.Heads == 0 {
		o.Heads = 32
	}
	if o.KVHeads == 0 {
		o.KVHeads = 4
	}
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { w(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	w(uint32(3))
	w(uint64(1)) // tensors
	a := o.Arch
	kvs := []struct {
		k string
		v any
	}{
		{"general.architecture", a}, {"general.name", "tiny"},
		{a + ".block_count", o.Layers}, {a + ".context_length", o.Context},
		{a + ".embedding_length", o.Embedding}, {a + ".attention.head_count", o.Heads},
		{a + ".attention.head_count_kv", o.KVHeads}, {a + ".feed_forward_length", uint32(5632)},
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
	w(o.TensorElements)
	w(uint32(0)) // F32
	w(uint64(0))
	for b.Len()%32 != 0 {
		b.WriteByte(0)
	}
	b.Write(make([]byte, o.TensorElements*4))
	return b.Bytes()
}
