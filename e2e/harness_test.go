// Package e2e holds aima's end-to-end tests: the built aima binary and an
// in-process daemon driving a real Docker engine with the engine simulator.
// They fail (not skip) when Docker is missing; `go test -short` skips them.
//
// The daemon config, model directory, `aima start` subprocess and
// in-process daemon come from internal/testenv (and its daemontest). The
// fault-injection suites are a package of their own, e2e/faults, so `go
// test ./...` runs the two side by side.
package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

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
