package tools_test

import (
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"testing"

	"aima/cli"
	"aima/mcp"
	"aima/tools"
)

var opName = regexp.MustCompile(`^[a-z]+_[a-z]+$`)

func TestRegistryInvariants(t *testing.T) {
	t.Parallel()
	ops := tools.Registry()
	if len(ops) == 0 {
		t.Fatal("empty registry")
	}
	seen := map[string]bool{}
	for i, op := range ops {
		name := op.Name()
		t.Run(name, func(t *testing.T) {
			if !opName.MatchString(name) {
				t.Errorf("name %q does not match %s", name, opName)
			}
			if got := op.Group() + "_" + op.Verb(); got != name {
				t.Errorf("Group()_Verb() = %q, want %q", got, name)
			}
			if d := op.Description(); len(d) < 60 {
				t.Errorf("description is %d chars, want at least 60: %q", len(d), d)
			}
			in := op.InputSchema()
			if in == nil {
				t.Fatal("nil input schema")
			}
			if in.Type != "object" {
				t.Errorf("input schema type = %q (types %v), want object", in.Type, in.Types)
			}
			if len(in.AnyOf) > 0 || len(in.OneOf) > 0 || len(in.AllOf) > 0 || in.Not != nil {
				t.Error("input schema has a top-level combinator (anyOf/oneOf/allOf/not)")
			}
			if in.Properties == nil {
				t.Error("input schema has nil properties")
			}
			for _, r := range in.Required {
				if _, ok := in.Properties[r]; !ok {
					t.Errorf("required field %q is not a property", r)
				}
			}
			if p := op.Positional(); p != "" {
				if _, ok := in.Properties[p]; !ok {
					t.Errorf("positional %q is not a property", p)
				}
			}
			if op.OutputSchema() == nil {
				t.Error("nil output schema")
			}
			if op.NewOutput() == nil {
				t.Error("NewOutput() = nil")
			}
			if a := op.Annotations(); a.ReadOnly && a.Destructive {
				t.Error("annotated both read-only and destructive")
			}
			if got, ok := tools.Lookup(name); !ok || got != op {
				t.Errorf("Lookup(%q) does not return this op", name)
			}
		})
		if seen[name] {
			t.Errorf("duplicate op name %q", name)
		}
		seen[name] = true
		if i > 0 && ops[i-1].Name() >= name {
			t.Errorf("registry not sorted: %q before %q", ops[i-1].Name(), name)
		}
	}
	// The ops the front-ends and the issue rely on.
	for _, name := range []string{"health_check", "engine_list", "model_list", "model_add", "service_create", "service_start", "service_stop", "service_status", "service_events", "service_logs", "service_wait", "service_delete"} {
		if !seen[name] {
			t.Errorf("registry lacks %s", name)
		}
	}
}

// TestRegistryIsStable: the registry is built once and shared by every
// front-end, so what a client sees depends on two things this test checks.
// Declaring the operations is deterministic (a second declaration gives the
// same names, descriptions, annotations and schemas, byte for byte: the
// committed schemas in schemas/ depend on it), and building the front-ends
// from the shared registry (MCP tools, the CLI's commands and flags)
// changes none of it: a front-end that edited a shared schema would change
// what the others serve.
func TestRegistryIsStable(t *testing.T) {
	t.Parallel()
	mcp.NewServer(tools.LocalCaller{}, mcp.Options{})
	mcp.NewServer(tools.LocalCaller{}, mcp.Options{ReadOnly: true})
	cli.NewRoot(cli.IO{Stdout: io.Discard, Stderr: io.Discard})
	shared, fresh := tools.Registry(), tools.Build()
	if len(shared) != len(fresh) {
		t.Fatalf("the shared registry has %d operations, a fresh declaration %d", len(shared), len(fresh))
	}
	for i := range fresh {
		if a, b := describe(t, shared[i]), describe(t, fresh[i]); a != b {
			t.Errorf("operation %d differs from a fresh declaration:\nshared: %s\nfresh:  %s", i, a, b)
		}
	}
}

// describe is everything a front-end reads from an operation, as JSON.
func describe(t *testing.T, op tools.Op) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"name": op.Name(), "description": op.Description(), "annotations": op.Annotations(),
		"positional": op.Positional(), "input": op.InputSchema(), "output": op.OutputSchema(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLookup(t *testing.T) {
	t.Parallel()
	start, ok := tools.Lookup("service_start")
	if !ok || start.Name() != "service_start" {
		t.Fatalf("Lookup(service_start) = %v, %v", start, ok)
	}
	for _, alias := range []string{"service.start", "service/start"} {
		op, ok := tools.Lookup(alias)
		if !ok || op != start {
			t.Errorf("Lookup(%q) did not find service_start", alias)
		}
	}
	for _, bad := range []string{"", "service", "start", "service_begin", "Service_Start", "service__start", "service start"} {
		if op, ok := tools.Lookup(bad); ok {
			t.Errorf("Lookup(%q) found %s", bad, op.Name())
		}
	}
}

func TestVisible(t *testing.T) {
	t.Parallel()
	all := tools.Visible(false)
	if len(all) != len(tools.Registry()) {
		t.Errorf("Visible(false) has %d ops, registry %d", len(all), len(tools.Registry()))
	}
	ro := tools.Visible(true)
	var names []string
	for _, op := range ro {
		if !op.Annotations().ReadOnly {
			t.Errorf("Visible(true) includes mutating op %s", op.Name())
		}
		names = append(names, op.Name())
	}
	for _, want := range []string{"service_status", "service_list", "service_events", "service_logs", "engine_list", "model_list", "health_check"} {
		if !slices.Contains(names, want) {
			t.Errorf("Visible(true) lacks %s", want)
		}
	}
	for _, hidden := range []string{"service_start", "service_stop", "service_create", "service_delete", "model_add", "model_remove"} {
		if slices.Contains(names, hidden) {
			t.Errorf("Visible(true) includes %s", hidden)
		}
	}
	// Every read-only op of the registry is visible in read-only mode.
	for _, op := range tools.Registry() {
		if op.Annotations().ReadOnly && !slices.Contains(names, op.Name()) {
			t.Errorf("read-only op %s hidden in read-only mode", op.Name())
		}
	}
}
