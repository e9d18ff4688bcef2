package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedDocsAreCurrent renders every generated section from the
// code and compares it with the committed page: a new command, tool,
// error kind, config key or metric, or a changed description, fails here
// until `make docs` has written it into docs/reference.
func TestGeneratedDocsAreCurrent(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	stale, err := generate(root, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stale {
		t.Errorf("%s: the generated section %q differs from the code: run `make docs` and commit the change", s.file, s.name)
	}
}

// TestSplice: the section's text goes between its markers, the rest of
// the page is kept, and a page without its markers is an error.
func TestSplice(t *testing.T) {
	page := []byte("# Title\n\nbefore\n" + begin("x") + "\nold\n" + end("x") + "\nafter\n")
	got, err := splice(page, "x", "| a |\n")
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	if !strings.HasPrefix(s, "# Title\n\nbefore\n"+begin("x")+"\n") || !strings.HasSuffix(s, "\n| a |\n\n"+end("x")+"\nafter\n") || strings.Contains(s, "old") {
		t.Errorf("spliced page:\n%s", s)
	}
	again, err := splice(got, "x", "| a |\n")
	if err != nil || string(again) != s {
		t.Errorf("splicing the same text twice changed the page: %v\n%s", err, again)
	}
	for _, bad := range []string{"no markers", end("x") + begin("x"), begin("x") + begin("x") + end("x")} {
		if _, err := splice([]byte(bad), "x", "y"); err == nil {
			t.Errorf("splice into %q: no error", bad)
		}
	}
}

// TestEveryPageHasItsMarkers: each page a section names exists in the
// repository and holds the section's markers.
func TestEveryPageHasItsMarkers(t *testing.T) {
	for _, s := range sections {
		page, err := os.ReadFile(filepath.Join("..", "..", s.file))
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
			continue
		}
		if !strings.Contains(string(page), begin(s.name)) || !strings.Contains(string(page), end(s.name)) {
			t.Errorf("%s lacks the markers of %s", s.file, s.name)
		}
	}
}

// TestReadmeLayoutListsEveryFolder keeps the README's layout table true:
// every top-level folder of the module, and every command under cmd/, has
// a row (build output, bin/, is not part of the source).
func TestReadmeLayoutListsEveryFolder(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "## Layout\n")
	if !ok {
		t.Fatal("the README has no ## Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	var want []string
	for _, dir := range []string{".", "cmd"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if !e.IsDir() || name == "bin" || name == "cmd" || (strings.HasPrefix(name, ".") && name != ".ci") {
				continue
			}
			if dir == "cmd" {
				name = "cmd/" + name
			}
			want = append(want, name)
		}
	}
	for _, name := range want {
		if !strings.Contains(layout, "`"+name+"`") && !strings.Contains(layout, "`"+name+"/`") {
			t.Errorf("the README's layout table has no row for %s", name)
		}
	}
}
