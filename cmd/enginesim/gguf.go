package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	gguf "github.com/gpustack/gguf-parser-go"
)

// ggufInfo is what llama-server's loader prints about a GGUF file, read from
// its header so the simulator's lines agree with the file aima mounted.
type ggufInfo struct {
	Version     uint32
	KVCount     uint64
	TensorCount uint64
	Arch        string
	Name        string
	Layers      int   // <arch>.block_count
	CtxTrain    int   // <arch>.context_length
	KVHeads     int   // <arch>.attention.head_count_kv (head_count without GQA)
	HeadDim     int   // <arch>.attention.key_length, else embedding / heads
	Embedding   int   // <arch>.embedding_length
	WeightBytes int64 // the tensors' data
	FileType    string
}

// ggufProblem is why llama-server refuses a file, in its own words (the
// line gguf_init_from_file or the architecture loader prints).
type ggufProblem struct{ line string }

func (p *ggufProblem) Error() string { return p.line }

// ggufMaxCount bounds the header's counts before anything is allocated for
// them: a hostile file cannot make the simulator allocate beyond what its
// own size could describe (llama.cpp's gguf.cpp checks the same).
const ggufMaxCount = 1 << 24

// readGGUF reads the header of the GGUF file at path with the project's
// GGUF parser (gpustack/gguf-parser-go, as aima's estimator does), bounded:
// only regular files are opened (a FIFO would block the read), the 24-byte
// preamble is checked first (magic, version, counts against the file's
// size), and large metadata arrays (the vocabulary) are skipped.
func readGGUF(path string) (*ggufInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &ggufProblem{fmt.Sprintf("gguf_init_from_file: failed to open GGUF file '%s' (No such file or directory)", path)}
	}
	if !st.Mode().IsRegular() {
		return nil, &ggufProblem{fmt.Sprintf("gguf_init_from_file: failed to open GGUF file '%s' (Is a directory)", path)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &ggufProblem{fmt.Sprintf("gguf_init_from_file: failed to open GGUF file '%s' (%v)", path, err)}
	}
	var pre [24]byte
	n, _ := io.ReadFull(f, pre[:])
	_ = f.Close()
	if n < 4 || string(pre[:4]) != "GGUF" {
		return nil, &ggufProblem{fmt.Sprintf("gguf_init_from_file_impl: invalid magic characters: '%s', expected 'GGUF'", printableMagic(pre[:min(n, 4)]))}
	}
	if n < 24 {
		return nil, &ggufProblem{"gguf_init_from_file_impl: failed to read header"}
	}
	info := &ggufInfo{
		Version:     binary.LittleEndian.Uint32(pre[4:8]),
		TensorCount: binary.LittleEndian.Uint64(pre[8:16]),
		KVCount:     binary.LittleEndian.Uint64(pre[16:24]),
	}
	if info.Version < 2 || info.Version > 3 {
		return nil, &ggufProblem{fmt.Sprintf("gguf_init_from_file_impl: unsupported GGUF version: %d", info.Version)}
	}
	if info.TensorCount > ggufMaxCount || info.KVCount > ggufMaxCount ||
		info.TensorCount+info.KVCount > uint64(st.Size()) {
		return nil, &ggufProblem{fmt.Sprintf("gguf_init_from_file_impl: number of tensors (%d) or key-value pairs (%d) is too large for a file of %d bytes", info.TensorCount, info.KVCount, st.Size())}
	}
	gf, err := gguf.ParseGGUFFile(path, gguf.SkipLargeMetadata())
	if err != nil {
		return nil, &ggufProblem{fmt.Sprintf("gguf_init_from_file_impl: failed to read key-value pairs: %v", err)}
	}
	a := gf.Architecture()
	info.Arch = a.Architecture
	if v, ok := gf.Header.MetadataKV.Get("general.architecture"); ok {
		info.Arch = v.ValueString()
	}
	if v, ok := gf.Header.MetadataKV.Get("general.name"); ok {
		info.Name = v.ValueString()
	}
	info.Layers, info.CtxTrain, info.Embedding = int(a.BlockCount), int(a.MaximumContextLength), int(a.EmbeddingLength)
	info.KVHeads = int(a.AttentionHeadCountKV)
	if info.KVHeads == 0 {
		info.KVHeads = int(a.AttentionHeadCount)
	}
	switch {
	case a.AttentionKeyLength > 0:
		info.HeadDim = int(a.AttentionKeyLength)
	case a.AttentionHeadCount > 0:
		info.HeadDim = int(a.EmbeddingLength / a.AttentionHeadCount)
	}
	info.WeightBytes = int64(gf.ModelSize)
	info.FileType = gf.Metadata().FileType.String()
	return info, nil
}

// printableMagic renders the first bytes as llama.cpp does (raw chars).
func printableMagic(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, string(b))
}

// llamaArchs are the architectures the simulated llama-server build knows;
// another general.architecture fails like llama.cpp's loader does.
var llamaArchs = map[string]bool{
	"llama": true, "llama4": true, "qwen2": true, "qwen2moe": true, "qwen3": true, "qwen3moe": true,
	"gemma": true, "gemma2": true, "gemma3": true, "phi2": true, "phi3": true, "mistral3": true,
	"deepseek2": true, "gpt-oss": true, "granite": true, "olmo2": true, "command-r": true,
	"starcoder2": true, "falcon": true, "gpt2": true, "bert": true, "nomic-bert": true, "glm4": true,
}
