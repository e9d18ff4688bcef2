package models

import (
	"os"
	"path/filepath"
	"testing"

	"aima/errs"
	"aima/state"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInspectHFDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Qwen2.5-0.5B")
	writeFile(t, filepath.Join(dir, "config.json"), `{"architectures":["Qwen2ForCausalLM"],"torch_dtype":"bfloat16","max_position_embeddings":32768}`)
	writeFile(t, filepath.Join(dir, "model.safetensors"), "0123456789")
	m, err := Inspect(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != "hf" || m.Architecture != "Qwen2ForCausalLM" || m.DType != "bfloat16" || m.MaxContext != 32768 || m.Name != "Qwen2.5-0.5B" {
		t.Fatalf("Inspect = %+v", m)
	}
	if m.SizeBytes < 10 {
		t.Fatalf("size %d, want the files' size", m.SizeBytes)
	}
	if m.ID != IDForPath(dir) || len(m.ID) > 16 {
		t.Fatalf("ID %q not stable and short", m.ID)
	}
}

func TestInspectGGUFAndRejections(t *testing.T) {
	root := t.TempDir()
	gguf := filepath.Join(root, "tiny-q4.gguf")
	writeFile(t, gguf, "GGUF")
	m, err := Inspect(t.Context(), gguf)
	if err != nil || m.Format != "gguf" || m.Name != "tiny-q4" || m.SizeBytes != 4 {
		t.Fatalf("Inspect(t.Context(), gguf) = %+v, %v", m, err)
	}
	writeFile(t, filepath.Join(root, "notes.txt"), "x")
	writeFile(t, filepath.Join(root, "badjson", "config.json"), "{")
	if err := os.MkdirAll(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing":     filepath.Join(root, "nope"),
		"not a model": filepath.Join(root, "notes.txt"),
		"no config":   filepath.Join(root, "empty"),
		"bad json":    filepath.Join(root, "badjson"),
		"traversal":   filepath.Join(root, "..", "..", "..", "etc"),
		"empty":       "",
		"nul":         "a\x00b",
	} {
		if _, err := Inspect(t.Context(), path); errs.KindOf(err) != errs.InvalidArgument || errs.FieldOf(err) != "path" {
			t.Errorf("%s: Inspect(%q) = %v, want invalid_argument on path", name, path, err)
		}
	}
}

func TestRegistryAddGetListRemoveScan(t *testing.T) {
	ctx := t.Context()
	reg := NewRegistry(state.NewMemory())
	root := t.TempDir()
	a := filepath.Join(root, "a")
	writeFile(t, filepath.Join(a, "config.json"), `{}`)
	writeFile(t, filepath.Join(root, "nested", "deeper", "b", "config.json"), `{}`)
	writeFile(t, filepath.Join(root, "c.gguf"), "GGUF")
	writeFile(t, filepath.Join(root, ".hidden", "d", "config.json"), `{}`)

	m, err := reg.Add(ctx, a, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	again, err := reg.Add(ctx, a, "")
	if err != nil || again.ID != m.ID || again.Name != "alpha" {
		t.Fatalf("re-adding: %+v, %v", again, err)
	}
	if _, err := reg.Add(ctx, a, "bad/name"); errs.FieldOf(err) != "name" {
		t.Fatalf("bad name: %v", err)
	}
	for _, ref := range []string{m.ID, "alpha"} {
		if got, err := reg.Get(ctx, ref); err != nil || got.ID != m.ID {
			t.Fatalf("Get(%q) = %+v, %v", ref, got, err)
		}
	}
	if _, err := reg.Get(ctx, "m-unknown"); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("Get(unknown) = %v", err)
	}
	res, err := reg.Scan(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Found) != 3 || len(res.Skipped) != 0 {
		t.Fatalf("Scan found %d models, want a, b and c.gguf (not the hidden one), none skipped: %+v", len(res.Found), res)
	}
	all, err := reg.List(ctx)
	if err != nil || len(all) != 3 || all[0].ID != m.ID {
		t.Fatalf("List = %+v, %v (want 3, oldest first)", all, err)
	}
	if _, err := reg.Remove(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Remove(ctx, "alpha"); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("second Remove = %v", err)
	}
	if _, err := reg.Scan(ctx, filepath.Join(root, "c.gguf")); errs.FieldOf(err) != "dir" {
		t.Fatalf("Scan(file) = %v", err)
	}
}
