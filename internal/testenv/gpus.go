package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"aima/internal/testenv/fakesmi"
)

// FakeSMI is a fake nvidia-smi for one test: a wrapper script named
// nvidia-smi (put its Dir on the daemon's PATH, or name Path as the
// config's nvidia_smi) running the fake program on the test's Spec.
type FakeSMI struct {
	Path string // the nvidia-smi script
	Dir  string // its directory
	spec string
}

// FakeNvidiaSMI builds the fake nvidia-smi (once per test process) and
// returns a wrapper that answers from spec.
func FakeNvidiaSMI(t testing.TB, spec fakesmi.Spec) *FakeSMI {
	t.Helper()
	bin := BuildBinary(t, "aima/internal/testenv/nvidia-smi")
	dir := t.TempDir()
	f := &FakeSMI{Dir: filepath.Join(dir, "bin"), spec: filepath.Join(dir, "spec.json")}
	f.Path = filepath.Join(f.Dir, "nvidia-smi")
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.Set(t, spec)
	script := fmt.Sprintf("#!/bin/sh\n%s=%q exec %q \"$@\"\n", fakesmi.EnvSpec, f.spec, bin)
	if err := os.WriteFile(f.Path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// Set replaces what the fake answers from now on (e.g. Mode hang).
func (f *FakeSMI) Set(t testing.TB, spec fakesmi.Spec) {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	tmp := f.spec + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.spec); err != nil {
		t.Fatal(err)
	}
}

// TwoGPUs is the integration tests' host: two 80 GiB GPUs, all free.
func TwoGPUs() fakesmi.Spec {
	return fakesmi.Spec{GPUs: []fakesmi.GPU{{MemoryMiB: 81920}, {MemoryMiB: 81920}}}
}

// GPUConfig is the daemon config of GPU tests: vllm is the simulator with
// gpus auto, the inventory comes from the fake nvidia-smi, and GPUs reach
// containers through NVIDIA_VISIBLE_DEVICES only (the Docker engine here
// has no NVIDIA runtime).
func GPUConfig(t testing.TB, fake *FakeSMI, opts SimConfigOptions) string {
	t.Helper()
	opts.GPUs = "auto"
	opts.Extra += fmt.Sprintf("gpu_attach: env\nnvidia_smi: %s\n", fake.Path)
	return SimConfig(t, opts)
}
