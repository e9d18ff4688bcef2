// Package e2e holds aima's end-to-end tests: the built aima binary and an
// in-process daemon driving a real Docker engine with the engine simulator.
// They fail (not skip) when Docker is missing; `go test -short` skips them.
//
// The daemon config, model directory, `aima start` subprocess and
// in-process daemon come from internal/testenv (and its daemontest).
package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"aima/internal/testenv"
)

// getJSON fetches an HTTP API route of the daemon and decodes it.
func getJSON(t *testing.T, d *testenv.DaemonProc, path string, v any) int {
	t.Helper()
	code, body, err := d.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return code
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// dockerPS lists containers of the given service label as "name status".
func dockerPS(t *testing.T, filter string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-a", "--filter", filter, "--format", "{{.Names}} {{.State}}").CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps: %v: %s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
