package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A section is one generated table: the page it lives in (relative to the
// module root), its marker name and how to render it.
type section struct {
	file, name string
	render     func(root string) (string, error)
}

// sections are every generated table, page by page.
var sections = []section{
	{"docs/reference/cli.md", "cli", renderCLI},
	{"docs/reference/tools.md", "tools", renderTools},
	{"docs/reference/tools.md", "tool-details", renderToolDetails},
	{"docs/reference/jsonrpc.md", "jsonrpc", renderJSONRPC},
	{"docs/reference/errors.md", "errors", renderErrors},
	{"docs/reference/errors.md", "failures", renderFailures},
	{"docs/reference/config.md", "config", renderConfig},
	{"docs/reference/metrics.md", "metrics", renderMetrics},
}

func begin(name string) string { return "<!-- BEGIN GENERATED: " + name + " -->" }
func end(name string) string   { return "<!-- END GENERATED: " + name + " -->" }

// splice puts body between the section's markers in page. The markers must
// each be there once, in order.
func splice(page []byte, name, body string) ([]byte, error) {
	b, e := []byte(begin(name)), []byte(end(name))
	i, j := bytes.Index(page, b), bytes.Index(page, e)
	if i < 0 || j < 0 || j < i || bytes.Count(page, b) != 1 || bytes.Count(page, e) != 1 {
		return nil, fmt.Errorf("want the markers %q and %q once each, in that order", begin(name), end(name))
	}
	var out bytes.Buffer
	out.Write(page[:i+len(b)])
	out.WriteString("\n<!-- Written by `make docs` (cmd/aima-docs) from the code: edit the code, not this table. -->\n\n")
	out.WriteString(strings.TrimSpace(body))
	out.WriteString("\n\n")
	out.Write(page[j:])
	return out.Bytes(), nil
}

type stale struct{ file, name string }

// generate renders every section and compares it with the pages under
// root; with write it rewrites the pages that differ. It returns the
// sections that differed.
func generate(root string, write bool) ([]stale, error) {
	pages := map[string][]byte{}
	var order []string
	var out []stale
	for _, s := range sections {
		page, ok := pages[s.file]
		if !ok {
			var err error
			if page, err = os.ReadFile(filepath.Join(root, s.file)); err != nil {
				return nil, err
			}
			order = append(order, s.file)
		}
		body, err := s.render(root)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", s.file, s.name, err)
		}
		next, err := splice(page, s.name, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.file, err)
		}
		if !bytes.Equal(next, page) {
			out = append(out, stale{s.file, s.name})
		}
		pages[s.file] = next
	}
	if write {
		for _, f := range order {
			path := filepath.Join(root, f)
			old, _ := os.ReadFile(path)
			if !bytes.Equal(old, pages[f]) {
				if err := os.WriteFile(path, pages[f], 0o644); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// cell makes s fit in one Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// code is s as inline code, or a dash when empty.
func code(s string) string {
	if s == "" {
		return "—"
	}
	return "`" + s + "`"
}
