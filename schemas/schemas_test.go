package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"aima/mcp"
	"aima/tools"
)

// render produces a file's canonical bytes: keys sorted (by way of a
// map round trip), two-space indent, trailing newline.
func render(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(generic, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// TestSchemas compares the committed schemas and tool snapshots with the
// ones generated from the code: any change to what a client sees of an
// operation (its input or output schema, its description, title or
// annotations) fails here until the files are regenerated and the change
// is reviewed in the diff. UPDATE_SCHEMAS=1 rewrites them (make schemas).
func TestSchemas(t *testing.T) {
	update := os.Getenv("UPDATE_SCHEMAS") == "1"
	want := map[string][]byte{}
	for _, op := range tools.Registry() {
		want[op.Name()+".input.json"] = render(t, op.InputSchema())
		want[op.Name()+".output.json"] = render(t, op.OutputSchema())
		want[op.Name()+".tool.json"] = render(t, mcp.Tool(op))
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		got, err := os.ReadFile(name)
		if update {
			if err != nil || !bytes.Equal(got, want[name]) {
				if err := os.WriteFile(name, want[name], 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s is missing: run `make schemas` and commit it", name)
			continue
		}
		if !bytes.Equal(got, want[name]) {
			t.Errorf("%s differs from the code: run `make schemas` and commit the change", name)
		}
	}
	committed, _ := filepath.Glob("*.json")
	for _, f := range committed {
		if _, ok := want[f]; !ok {
			if update {
				_ = os.Remove(f)
				continue
			}
			t.Errorf("%s belongs to no operation: run `make schemas`", f)
		}
	}
}
