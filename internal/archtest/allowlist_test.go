package archtest

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// allowed is every package of the module with the aima packages it may
// import (non-test files), in the manner of kubernetes-mcp-server's imports
// test: the layering is written down package by package, so it cannot
// drift. A new package fails TestImportsAllowlist until it is placed here;
// a new import across packages fails until its line says so, which makes
// every such change a reviewed line of this table. The layers, lowest
// first:
//
//	leaves:    errs, events, runtime, settings, internal/{units,filelock,kernelports,keylock,modroot,contained}
//	storage:   state and its implementations (kubestore); runtime implementations (docker, kubernetes, fakeruntime)
//	config:    the file, on leaves only (docs/decisions.md, "What the config imports")
//	domain:    models → gpu → engines → services (the lifecycle) → serving → inference, enginemetrics; cluster
//	           (serving sits on the lifecycle; services never imports it: see services/serving.go)
//	operations: tools
//	front-ends: httperr, httpguard, httpapi, mcp, jsonrpc, gateway, metrics, web, client
//	root:      daemon (the one composition root, which maps the config to the domain's options) → cli → cmd/aima
var allowed = map[string][]string{
	// leaves
	"errs":                 {},
	"events":               {"state"},
	"runtime":              {},
	"settings":             {"errs"},
	"internal/units":       {},
	"internal/filelock":    {},
	"internal/kernelports": {},
	"internal/keylock":     {},
	"internal/modroot":     {},
	"internal/contained":   {},
	"internal/kubeconf":    {"errs"},
	// storage and runtimes
	"state":               {"errs"},
	"runtime/docker":      {"errs", "runtime"},
	"runtime/kubernetes":  {"errs", "internal/kubeconf", "runtime"},
	"state/kubestore":     {"errs", "internal/kubeconf", "state"},
	"state/statetest":     {"errs", "state"},
	"runtime/fakeruntime": {"errs", "runtime"},
	"runtime/runtimetest": {"runtime"},
	// the config file: leaves only
	"config": {"errs", "runtime", "settings"},
	// domain
	"models":        {"errs", "state"},
	"gpu":           {"errs", "internal/units", "models", "runtime", "settings"},
	"engines":       {"errs", "gpu", "settings"},
	"services":      {"engines", "errs", "events", "gpu", "internal/contained", "internal/kernelports", "internal/keylock", "internal/units", "models", "runtime", "settings", "state"},
	"serving":       {"errs", "events", "gpu", "internal/contained", "internal/keylock", "services"},
	"inference":     {"errs", "events", "services", "serving", "settings"},
	"enginemetrics": {"engines", "services"},
	// aima as a cluster service: the leader's election and fencing
	"cluster": {"errs", "internal/kubeconf", "runtime", "state"},
	// operations
	"tools": {"enginemetrics", "engines", "errs", "events", "gpu", "inference", "models", "runtime", "services", "state"},
	// front-ends
	"httperr":   {"errs"},
	"httpguard": {"errs", "httperr"},
	"httpapi":   {"errs", "events", "httperr", "tools"},
	"mcp":       {"errs", "events", "httperr", "tools"},
	"jsonrpc":   {"errs", "events", "tools"},
	"gateway":   {"errs", "httperr", "inference", "serving"},
	"metrics":   {"enginemetrics", "errs", "events", "gpu", "httperr", "services", "tools"},
	"web":       {},
	"client":    {"errs", "events", "httpguard", "tools"},
	// the composition root and the binaries
	"daemon": {"cluster", "config", "enginemetrics", "engines", "errs", "events", "gateway", "gpu", "httpapi", "httperr", "httpguard",
		"inference", "internal/contained", "internal/kubeconf", "jsonrpc", "mcp", "metrics", "models", "runtime", "runtime/docker", "runtime/kubernetes", "services", "serving", "state", "state/kubestore", "tools", "web"},
	"cli":           {"client", "config", "daemon", "engines", "errs", "events", "gpu", "httpguard", "internal/units", "jsonrpc", "mcp", "models", "services", "state", "tools"},
	"cmd/aima":      {"cli"},
	"cmd/aima-docs": {"cli", "config", "errs", "httperr", "internal/modroot", "jsonrpc", "mcp", "metrics", "services", "tools"},
	"cmd/enginesim": {},
	"schemas":       {},
	"deploy":        {}, // the Helm chart and its test
}

// Test code and its harness may import any package; production code never
// imports the harness.
var harness = []string{"e2e", "internal/archtest", "internal/testenv"}

func TestImportsAllowlist(t *testing.T) {
	root := moduleRoot(t)
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go package here (or only tests)
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if rel == "." || underAny(rel, harness) {
			return nil
		}
		seen[rel] = true
		allow, ok := allowed[rel]
		if !ok {
			t.Errorf("package %s is not in the imports allowlist (internal/archtest/allowlist_test.go): place it in its layer", rel)
			return nil
		}
		for _, imp := range pkg.Imports {
			p, ok := strings.CutPrefix(imp, "aima/")
			if !ok {
				continue
			}
			if underAny(p, harness) {
				t.Errorf("production package %s imports the test harness %s", rel, p)
			} else if !contains(allow, p) {
				t.Errorf("package %s imports aima/%s, which its allowlist line does not name", rel, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for p := range allowed {
		if !seen[p] {
			stale = append(stale, p)
		}
	}
	sort.Strings(stale)
	for _, p := range stale {
		t.Errorf("the allowlist names %s, which is no package any more: remove its line", p)
	}
}

func underAny(p string, roots []string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
