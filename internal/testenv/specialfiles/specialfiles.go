//go:build unix

// Package specialfiles makes the files a hostile or careless client can
// point aima at as models: FIFOs, character devices and symlinks to them,
// named like model files, in one directory beside a sound model. Opening a
// FIFO blocks until a writer comes, /dev/zero never ends, and a device is no
// model, so these exercise every path that reads model files. The package
// imports nothing of aima's, so the tests of any package (models' own
// included) can use it.
package specialfiles

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Set is the files Make created.
type Set struct {
	Dir        string // holds everything below
	FIFOGGUF   string // x.gguf: a FIFO
	DevGGUF    string // dev.gguf: a character device (or, where mknod is not allowed, a symlink to /dev/null)
	FIFOConfig string // fifo-config/: a model directory whose config.json is a FIFO
	ZeroConfig string // zero-config/: a model directory whose config.json is a symlink to /dev/zero
	Good       string // good/: a sound model directory (config.json and a weights file)
}

// Hostile returns the paths that must be refused, with a name for each.
func (s Set) Hostile() map[string]string {
	return map[string]string{
		"FIFO x.gguf":                        s.FIFOGGUF,
		"character device dev.gguf":          s.DevGGUF,
		"FIFO config.json":                   s.FIFOConfig,
		"config.json symlinked to /dev/zero": s.ZeroConfig,
	}
}

// devNull is /dev/null's device number on Linux (major 1, minor 3).
const devNull = 1<<8 | 3

// Make creates a Set in a fresh temporary directory.
func Make(t testing.TB) Set {
	t.Helper()
	dir := t.TempDir()
	s := Set{
		Dir:        dir,
		FIFOGGUF:   filepath.Join(dir, "x.gguf"),
		DevGGUF:    filepath.Join(dir, "dev.gguf"),
		FIFOConfig: filepath.Join(dir, "fifo-config"),
		ZeroConfig: filepath.Join(dir, "zero-config"),
		Good:       filepath.Join(dir, "good"),
	}
	for _, d := range []string{s.FIFOConfig, s.ZeroConfig, s.Good} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, syscall.Mkfifo(s.FIFOGGUF, 0o644))
	must(t, syscall.Mkfifo(filepath.Join(s.FIFOConfig, "config.json"), 0o644))
	must(t, os.Symlink("/dev/zero", filepath.Join(s.ZeroConfig, "config.json")))
	if err := syscall.Mknod(s.DevGGUF, syscall.S_IFCHR|0o644, devNull); err != nil {
		if !errors.Is(err, syscall.EPERM) {
			t.Fatal(err)
		}
		must(t, os.Symlink("/dev/null", s.DevGGUF))
	}
	must(t, os.WriteFile(filepath.Join(s.Good, "config.json"), []byte(`{"architectures":["Qwen2ForCausalLM"],"torch_dtype":"bfloat16"}`), 0o644))
	must(t, os.WriteFile(filepath.Join(s.Good, "model.safetensors"), make([]byte, 1000), 0o644))
	// Special files inside a sound model count nothing towards its size.
	must(t, syscall.Mkfifo(filepath.Join(s.Good, "pipe"), 0o644))
	must(t, os.Symlink("/dev/zero", filepath.Join(s.Good, "zero")))
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
