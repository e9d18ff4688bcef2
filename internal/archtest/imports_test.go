// Package archtest guards aima's layering: front-ends (cli, client, httpapi,
// httpguard, mcp, jsonrpc, gateway, metrics, web, daemon) → tools → domain
// (services, serving, inference, enginemetrics, runtime, state, events, models,
// engines, config, errs, gpu). Domain code never imports a transport or the
// operation layer, tools imports no transport, and only the daemon picks a
// runtime implementation (runtime/docker or runtime/kubernetes; tests use runtime/fakeruntime).
package archtest

import (
	"go/build"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var (
	frontEnds = []string{"aima/cli", "aima/client", "aima/httpapi", "aima/httpguard", "aima/httperr", "aima/mcp", "aima/jsonrpc", "aima/gateway", "aima/metrics", "aima/web", "aima/daemon"}
	transport = []string{"github.com/mark3labs/mcp-go", "github.com/urfave/cli", "github.com/modelcontextprotocol/go-sdk"}
	domain    = []string{"services", "serving", "inference", "enginemetrics", "runtime", "runtime/docker", "runtime/kubernetes", "runtime/fakeruntime", "state", "state/kubestore", "cluster", "events", "models", "engines", "config", "errs", "gpu"}
	// runtimeImpls implement runtime.Runtime; only the daemon (and tests)
	// choose one, so the domain stays runtime-neutral.
	runtimeImpls = []string{"aima/runtime/docker", "aima/runtime/kubernetes", "aima/runtime/fakeruntime"}
)

func moduleRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func imports(t *testing.T, dir string) []string {
	t.Helper()
	pkg, err := build.ImportDir(dir, 0)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return pkg.Imports // non-test files only
}

func forbidden(imp string, bans []string) bool {
	for _, b := range bans {
		if imp == b || strings.HasPrefix(imp, b+"/") {
			return true
		}
	}
	return false
}

func TestDomainImportsNoFrontEnd(t *testing.T) {
	root := moduleRoot(t)
	bans := append(append([]string{"aima/tools"}, frontEnds...), transport...)
	for _, p := range domain {
		for _, imp := range imports(t, filepath.Join(root, p)) {
			if forbidden(imp, bans) {
				t.Errorf("domain package %s imports %s", p, imp)
			}
		}
	}
}

func TestToolsImportsNoTransport(t *testing.T) {
	for _, imp := range imports(t, filepath.Join(moduleRoot(t), "tools")) {
		if forbidden(imp, append(append([]string{}, frontEnds...), transport...)) || imp == "net/http" {
			t.Errorf("tools imports %s", imp)
		}
	}
}

// The event bus sits under the domain: besides the standard library it
// uses only the state store, where its journal keeps the durable history.
func TestEventBusIsALeaf(t *testing.T) {
	for _, imp := range imports(t, filepath.Join(moduleRoot(t), "events")) {
		if imp == "aima/state" {
			continue
		}
		if strings.Contains(imp, ".") || strings.HasPrefix(imp, "aima/") {
			t.Errorf("events imports %s; it must use only the standard library and aima/state", imp)
		}
	}
}

func TestOnlyTheDaemonPicksARuntime(t *testing.T) {
	root := moduleRoot(t)
	// cmd/aima-docs (the reference generator) reads the command tree, the
	// registry and the collectors' descriptors; it never needs a runtime.
	for _, p := range []string{"tools", "services", "models", "engines", "config", "httpapi", "mcp", "jsonrpc", "web", "cli", "client", "cmd/aima-docs"} {
		for _, imp := range imports(t, filepath.Join(root, p)) {
			if forbidden(imp, runtimeImpls) {
				t.Errorf("%s imports %s; only aima/daemon chooses the runtime", p, imp)
			}
		}
	}
}
