package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/internal/modroot"
)

// buildTimeout bounds one `go build` or image build.
const buildTimeout = 5 * time.Minute

// ModuleRoot returns the directory holding aima's go.mod, found by walking up
// from the working directory (go test runs each test in its package dir).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := modroot.Find()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// goBuild builds package pkg (an import path such as "aima/cmd/aima") as a
// static binary at out, from the module root.
func goBuild(pkg, out string) error {
	root, err := modroot.Find()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		return fmt.Errorf("testenv: go tool not found: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

var (
	binsMu sync.Mutex
	bins   = map[string]func() (string, error){} // package -> build-once result
)

// BuildBinary builds the main package pkg (e.g. "aima/cmd/enginesim") as a
// static binary once per test process and returns its path. Binaries live
// in a directory shared by the concurrent test processes of one checkout
// (each checkout has its own): each builds to a private name and renames it
// into place, which is atomic, so nobody ever executes a half-written file.
// A build failure fails every test that asks.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	binsMu.Lock()
	build, ok := bins[pkg]
	if !ok {
		build = sync.OnceValues(func() (string, error) { return buildShared(pkg) })
		bins[pkg] = build
	}
	binsMu.Unlock()
	path, err := build()
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	return path
}

func buildShared(pkg string) (string, error) {
	root, err := modroot.Find()
	if err != nil {
		return "", err
	}
	// One directory per checkout: test processes of another checkout of
	// the repository (other sources) must not replace this one's binary
	// under a daemon the test restarts.
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(sharedDir(), "bin-"+hex.EncodeToString(sum[:6]), strings.ReplaceAll(pkg, "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	final := filepath.Join(dir, filepath.Base(pkg))
	tmp := fmt.Sprintf("%s.%d.tmp", final, os.Getpid())
	if err := goBuild(pkg, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	return final, nil
}

// sharedDir is where test processes of this user share binaries and locks.
func sharedDir() string {
	dir := filepath.Join(os.TempDir(), "aima-testenv-"+strconv.Itoa(os.Getuid()))
	_ = os.MkdirAll(dir, 0o755)
	return dir
}

// BuildAima builds the aima CLI (aima/cmd/aima) once per test process and
// returns the binary's path, for end-to-end tests that drive the CLI.
func BuildAima(t testing.TB) string {
	t.Helper()
	return BuildBinary(t, "aima/cmd/aima")
}
