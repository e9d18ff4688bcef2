package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// SimTimeScale is the simulator's SIM_TIME_SCALE the tests run it with: its
// 20 s start-up takes about a second.
const SimTimeScale = "0.05"

// SimConfigOptions configures SimConfig.
type SimConfigOptions struct {
	// Image is vllm's image. Empty means EngineSimImage(t), which needs
	// Docker; tests that never start a service can pass EngineSimRef.
	Image string
	// Env is vllm's default container env. SIM_TIME_SCALE is SimTimeScale
	// unless Env sets it.
	Env map[string]string
	// NoEngineEnv leaves the engine's env out altogether (the services then
	// bring their own, SIM_TIME_SCALE included). Env is ignored.
	NoEngineEnv bool
	// PortSpan is the size of the port range (default 20), reserved for
	// the test below the kernel's ephemeral ports (see PortRange).
	PortSpan int
	// GPUs is vllm's gpus setting (default none: the simulator needs no
	// GPU). Tests with a fake GPU inventory use auto.
	GPUs string
	// MemoryLimitMiB is the engines' memory_limit_mib (default 0: none).
	MemoryLimitMiB int
	// Extra is appended verbatim: more top-level YAML lines, each ending in
	// a newline.
	Extra string
}

// SimConfig writes a daemon config (aima.yaml in a temporary directory) in
// which vllm, sglang and llamacpp are the engine simulator without GPUs
// (Image, GPUs and Env apply to all three), with a private port range, and
// returns its path.
func SimConfig(t testing.TB, opts SimConfigOptions) string {
	t.Helper()
	image := opts.Image
	if image == "" {
		image = EngineSimImage(t)
	}
	gpus := opts.GPUs
	if gpus == "" {
		gpus = "none"
	}
	var b strings.Builder
	b.WriteString("engines:\n")
	// All three engines run the simulator, which plays each one by the
	// command line aima gives it.
	for _, engine := range []string{"vllm", "sglang", "llamacpp"} {
		fmt.Fprintf(&b, "  %s:\n    image: %s\n    gpus: %s\n", engine, image, gpus)
		if opts.MemoryLimitMiB > 0 {
			fmt.Fprintf(&b, "    memory_limit_mib: %d\n", opts.MemoryLimitMiB)
		}
		if opts.NoEngineEnv {
			continue
		}
		env := map[string]string{"SIM_TIME_SCALE": SimTimeScale}
		for k, v := range opts.Env {
			env[k] = v
		}
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("    env:\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "      %s: %q\n", k, env[k])
		}
	}
	span := opts.PortSpan
	if span <= 0 {
		span = 20
	}
	lo := PortRange(t, span)
	fmt.Fprintf(&b, "port_range: %d-%d\n", lo, lo+span)
	b.WriteString(opts.Extra)
	path := filepath.Join(t.TempDir(), "aima.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// modelConfig is the config.json of MakeModel's model: a small Qwen2.
const modelConfig = `{"architectures":["Qwen2ForCausalLM"],"torch_dtype":"bfloat16","max_position_embeddings":32768}`

// MakeModel creates a Hugging Face-style model directory named name (a
// config.json and a 4 KiB model.safetensors) in a temporary directory and
// returns its path.
func MakeModel(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(modelConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), bytes.Repeat([]byte{1}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
