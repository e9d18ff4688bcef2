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
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"aima/errs"
	"aima/state"
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

// Registry stores models.
type Registry struct {
	col *state.Collection[Model]
	now func() time.Time
}

// NewRegistry returns a registry over the store.
func NewRegistry(s state.Store) *Registry {
	return &Registry{col: state.NewCollection[Model](s, "models/", "model"), now: time.Now}
}

// IDForPath derives the stable ID of a model path: the same path always
// gets the same ID, so re-adding is idempotent.
func IDForPath(abs string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(abs)))
	return "m-" + hex.EncodeToString(sum[:])[:10]
}

// Inspect reads a model from disk without registering it.
func Inspect(path string) (Model, error) {
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
	if st.IsDir() {
		raw, err := os.ReadFile(filepath.Join(abs, "config.json"))
		if err != nil {
			return Model{}, errs.Invalid("path", "model directory %s has no readable config.json (a Hugging Face-style model directory is required)", abs)
		}
		var cfg struct {
			Architectures []string `json:"architectures"`
			DType         string   `json:"torch_dtype"`
			DType2        string   `json:"dtype"`
			MaxPos        int      `json:"max_position_embeddings"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return Model{}, errs.Invalid("path", "%s/config.json is not valid JSON: %v", abs, err)
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
		m.SizeBytes = dirSize(abs)
	} else {
		if !strings.EqualFold(filepath.Ext(abs), ".gguf") {
			return Model{}, errs.Invalid("path", "%s is neither a model directory with config.json nor a .gguf file", abs)
		}
		f, err := os.Open(abs)
		if err != nil {
			return Model{}, errs.Invalid("path", "model file %s is not readable: %v", abs, unwrapPathErr(err))
		}
		f.Close()
		m.Format = "gguf"
		m.Name = strings.TrimSuffix(m.Name, filepath.Ext(m.Name))
		m.SizeBytes = st.Size()
	}
	m.ID = IDForPath(abs)
	return m, nil
}

// unwrapPathErr drops the path from an fs error, which the message
// already names.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func dirSize(root string) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

var validName = func(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' {
			return false
		}
	}
	return true
}

// Add registers the model at path. Adding the same path again returns the
// existing record (updated name if one is given).
func (r *Registry) Add(ctx context.Context, path, name string) (Model, error) {
	m, err := Inspect(path)
	if err != nil {
		return Model{}, err
	}
	if name != "" {
		if !validName(name) {
			return Model{}, errs.Invalid("name", "name %q: want 1-128 printable characters without '/'", name)
		}
		m.Name = name
	}
	m.CreatedAt = r.now().UTC()
	if err := r.col.Create(ctx, m.ID, m); err != nil {
		if !errs.Is(err, errs.Conflict) {
			return Model{}, err
		}
		return r.col.Update(ctx, m.ID, func(old *Model) error {
			if name != "" {
				old.Name = name
			}
			old.SizeBytes, old.Architecture, old.DType, old.MaxContext = m.SizeBytes, m.Architecture, m.DType, m.MaxContext
			return nil
		})
	}
	return m, nil
}

// Get returns a model by ID or by name (an ID match wins).
func (r *Registry) Get(ctx context.Context, ref string) (Model, error) {
	if ref == "" {
		return Model{}, errs.Invalid("model_id", "model_id is required")
	}
	if m, err := r.col.Get(ctx, ref); err == nil {
		return m, nil
	} else if !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.InvalidArgument) {
		return Model{}, err
	}
	all, err := r.col.List(ctx)
	if err != nil {
		return Model{}, err
	}
	for _, m := range all {
		if m.Name == ref {
			return m, nil
		}
	}
	return Model{}, errs.NotFoundf("model %s not found", ref)
}

// List returns all models, oldest first.
func (r *Registry) List(ctx context.Context) ([]Model, error) {
	all, err := r.col.List(ctx)
	if err != nil {
		return nil, err
	}
	sortByCreated(all)
	return all, nil
}

// Remove unregisters a model (its files are left alone).
func (r *Registry) Remove(ctx context.Context, id string) (Model, error) {
	m, err := r.Get(ctx, id)
	if err != nil {
		return Model{}, err
	}
	return m, r.col.Delete(ctx, m.ID)
}

// Scan registers every model found under dir (up to 4 levels deep): each
// directory with a config.json, and each .gguf file.
func (r *Registry) Scan(ctx context.Context, dir string) ([]Model, error) {
	abs, err := filepath.Abs(dir)
	if err != nil || dir == "" {
		return nil, errs.Invalid("dir", "dir %q is not a valid path", dir)
	}
	st, err := os.Stat(abs)
	if err != nil || !st.IsDir() {
		return nil, errs.Invalid("dir", "%s is not a readable directory", abs)
	}
	var found []Model
	walkErr := filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		depth := strings.Count(strings.TrimPrefix(p, abs), string(filepath.Separator))
		if d.IsDir() {
			if depth > 4 || (strings.HasPrefix(d.Name(), ".") && p != abs) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "config.json")); err == nil {
				m, err := r.Add(ctx, p, "")
				if err == nil {
					found = append(found, m)
				}
				return filepath.SkipDir
			}
			return nil
		}
		if strings.EqualFold(filepath.Ext(p), ".gguf") {
			if m, err := r.Add(ctx, p, ""); err == nil {
				found = append(found, m)
			}
		}
		return nil
	})
	if walkErr != nil {
		return found, walkErr
	}
	return found, nil
}
