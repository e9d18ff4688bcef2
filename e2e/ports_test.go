package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aima/internal/testenv"
	"aima/internal/testenv/testports"
)

// A port_range among the kernel's ephemeral ports (where outgoing
// connections take their source ports, so a service's kept port is found
// in use at random) is reported at start-up and by doctor, with what to
// do; the default range is not.
func TestPortRangeAmongEphemeralPortsIsReported(t *testing.T) {
	t.Parallel()
	low := testports.EphemeralLow()
	cfg := filepath.Join(t.TempDir(), "aima.yaml")
	yaml := fmt.Sprintf("engines:\n  vllm:\n    image: %s\n    gpus: none\nport_range: %d-%d\n", testenv.EngineSimRef, low+100, low+120)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: cfg})
	doc := testenv.DecodeJSON[struct{ Warnings []string }](t, d.MustCLI(t, "doctor", "-o", "json").Stdout)
	want := fmt.Sprintf("port_range %d-%d overlaps the kernel's ephemeral ports", low+100, low+120)
	if !strings.Contains(strings.Join(doc.Warnings, "\n"), want) {
		t.Errorf("doctor warnings %q lack %q", doc.Warnings, want)
	}
	if !strings.Contains(d.Logs(), want) {
		t.Errorf("the start-up log lacks %q", want)
	}

	quiet := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{Image: testenv.EngineSimRef})})
	doc = testenv.DecodeJSON[struct{ Warnings []string }](t, quiet.MustCLI(t, "doctor", "-o", "json").Stdout)
	if strings.Contains(strings.Join(doc.Warnings, "\n"), "ephemeral") {
		t.Errorf("doctor warns about a range below the ephemeral ports: %q", doc.Warnings)
	}
}
