package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aima/daemon"
	"aima/errs"
)

// A bad engines section is refused at load time like any other bad
// setting: InvalidArgument on field config, the file named, the catalog's
// reason kept.
func TestLoadConfigChecksTheEnginesSection(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"engines:\n  tgi:\n    image: x\n":                      `unknown engine type "tgi"`,
		"engines:\n  vllm:\n    gpus: some\n":                   "engine vllm",
		"engines:\n  vllm:\n    args: [\"--port=9000\"]\n":      "--port",
		"engines:\n  vllm:\n    memory_limit_mib: -1\n":         "negative",
		"store: memory\nengines:\n  vllm:\n    gpus: \"0,x\"\n": "engine vllm",
	} {
		p := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(p, []byte(raw), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := daemon.LoadConfig(p)
		if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != "config" || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadConfig(%q) = %v (kind %s, field %q), want invalid_argument on config naming the file and %q", raw, err, errs.KindOf(err), errs.FieldOf(err), want)
		}
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("engines:\n  vllm:\n    image: aima-enginesim:dev\n    gpus: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, cat, err := daemon.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := cat.Get("vllm"); err != nil || e.Image != "aima-enginesim:dev" || e.GPUs != "none" || cfg.Engines["vllm"].Image != e.Image {
		t.Errorf("catalog vllm = %+v, %v", e, err)
	}
	if _, _, err := daemon.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); !errs.Is(err, errs.InvalidArgument) {
		t.Errorf("LoadConfig of a missing file = %v, want invalid_argument", err)
	}
	if cfg, cat, err := daemon.LoadConfig(""); err != nil || cat == nil || cfg.Store != "bolt" {
		t.Errorf("LoadConfig(\"\") = %+v, %v, %v; want the defaults", cfg.Store, cat, err)
	}
}
