// Package models is aima's registry of local models: Hugging Face-style
// directories (with config.json) and GGUF files. A model's path is what gets
// mounted read-only into its engine containers, so it must exist and be
// readable when registered.
package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"aima/errs"
)

// Model is one registered model.
type Model struct {
	ID           string    `json:"id" jsonschema:"stable short model ID, derived from the path"`
	Name         string    `json:"name" jsonschema:"display name; also the served model name"`
	Path         string    `json:"path" jsonschema:"absolute path of the model directory or GGUF file"`
	Format       string    `json:"format" jsonschema:"hf (a directory with config.json) or gguf"`
	Architecture string    `json:"architecture,omitempty" jsonschema:"architecture from config.json, e.g. Qwen2ForCausalLM"`
	DType        string    `json:"dtype,omitempty" jsonschema:"torch dtype from config.json"`
	MaxContext   int       `json:"max_context,omitempty" jsonschema:"max_position_embeddings from config.json"`
	SizeBytes    int64     `json:"size_bytes" jsonschema:"size on disk in bytes"`
	CreatedAt    time.Time `json:"created_at"`
}

// IDForPath derives the stable ID of a model path: the same path always
// gets the same ID, so re-adding is idempotent.
func IDForPath(abs string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(abs)))
	return "m-" + hex.EncodeToString(sum[:])[:10]
}

// Inspect reads a model from disk without registering it: it stats the
// path, reads config.json through ReadMetadata (capped, never blocking on a
// special file) and adds up the size of the regular files. Only a directory
// with a config.json or a regular .gguf file is a model; FIFOs, devices and
// sockets are refused with an invalid_argument naming the path and what it
// is. It stops when ctx ends.
func Inspect(ctx context.Context, path string) (Model, error) {
	if strings.TrimSpace(path) == "" {
		return Model{}, errs.Invalid("path", "path is required")
	}
	if strings.ContainsRune(path, 0) {
		return Model{}, errs.Invalid("path", "path contains a NUL byte")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Model{}, errs.Invalid("path", "path %q: %v", path, err)
	}
	// Resolve symlinks so the mount source is the real directory.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	st, err := os.Stat(abs)
	if err != nil {
		return Model{}, errs.Invalid("path", "model path %s: %v", abs, unwrapPathErr(err))
	}
	m := Model{Path: abs, Name: filepath.Base(abs)}
	switch {
	case st.IsDir():
		cfgPath := filepath.Join(abs, "config.json")
		if _, err := os.Lstat(cfgPath); err != nil {
			return Model{}, errs.Invalid("path", "model directory %s has no config.json (a Hugging Face-style model directory is required)", abs)
		}
		raw, err := ReadMetadata(cfgPath, configLimit)
		if err != nil {
			return Model{}, err
		}
		var cfg struct {
			Architectures []string `json:"architectures"`
			DType         string   `json:"torch_dtype"`
			DType2        string   `json:"dtype"`
			MaxPos        int      `json:"max_position_embeddings"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return Model{}, errs.Invalid("path", "%s is not valid JSON: %v", cfgPath, err)
		}
		m.Format = "hf"
		if len(cfg.Architectures) > 0 {
			m.Architecture = cfg.Architectures[0]
		}
		m.DType = cfg.DType
		if m.DType == "" {
			m.DType = cfg.DType2
		}
		m.MaxContext = cfg.MaxPos
		if m.SizeBytes, err = dirSize(ctx, abs); err != nil {
			return Model{}, err
		}
	case !strings.EqualFold(filepath.Ext(abs), ".gguf"):
		if !st.Mode().IsRegular() {
			return Model{}, notRegular(abs, st.Mode())
		}
		return Model{}, errs.Invalid("path", "%s is neither a model directory with config.json nor a .gguf file", abs)
	default:
		f, fst, err := OpenRegular(abs)
		if err != nil {
			return Model{}, err
		}
		_ = f.Close()
		m.Format = "gguf"
		m.Name = strings.TrimSuffix(m.Name, filepath.Ext(m.Name))
		m.SizeBytes = fst.Size()
	}
	m.ID = IDForPath(abs)
	return m, nil
}

// dirSize adds up the sizes of the regular files under root, following
// symlinks to files (Hugging Face caches link weights into blobs/) but not
// into directories; FIFOs, devices and sockets count nothing and are never
// opened. It stops with ctx's error when ctx ends.
func dirSize(ctx context.Context, root string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return nil
		}
		switch {
		case d.Type().IsRegular():
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		case d.Type()&fs.ModeSymlink != 0:
			if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}
