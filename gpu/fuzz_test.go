package gpu

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"aima/errs"
)

// FuzzGGUFHeader feeds GGUF headers to the estimate: whatever the bytes,
// it ends with an estimate (with a note when the header is unreadable) or
// an InvalidArgument error, never a panic, a negative size or a figure
// JSON cannot carry.
func FuzzGGUFHeader(f *testing.F) {
	full := ggufBytes(tinyLlamaKVs())
	f.Add(full)
	f.Add(full[:200])
	f.Add(nestedArrayGGUF())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "model.gguf")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := EstimateModel(path, "gguf", ProfileFor("llamacpp"), EngineArgs{TP: 1})
		if err != nil {
			if !errs.Is(err, errs.InvalidArgument) {
				t.Fatalf("error %v, want invalid_argument", err)
			}
			return
		}
		if e.WeightsBytes < 0 || e.KVBytesPerToken < 0 || e.KVBytes < 0 || e.PerGPUBytes < e.OverheadBytes {
			t.Fatalf("estimate %+v", e)
		}
		if _, err := json.Marshal(e); err != nil {
			t.Fatal(err)
		}
	})
}
