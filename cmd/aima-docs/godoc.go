package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strconv"
	"strings"
)

// parseDir parses the non-test Go files of one package directory, with
// comments.
func parseDir(dir string) ([]*ast.File, error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, p := range pkgs {
		for _, f := range p.Files {
			files = append(files, f)
		}
	}
	return files, nil
}

// constDocs maps the value of each string constant of type typeName in dir
// to its comment (the doc above it, else the one after it on its line),
// without a leading "Name:" or "Name".
func constDocs(dir, typeName string) (map[string]string, error) {
	files, err := parseDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				v := spec.(*ast.ValueSpec)
				if id, ok := v.Type.(*ast.Ident); !ok || id.Name != typeName || len(v.Values) != 1 {
					continue
				}
				lit, ok := v.Values[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				val, _ := strconv.Unquote(lit.Value)
				out[val] = docText(v.Doc, v.Comment, v.Names[0].Name)
			}
		}
	}
	return out, nil
}

// structFieldDocs maps each struct type declared in dir to its fields' doc
// comments, so a section added to the config is documented without a list
// here to keep in step.
func structFieldDocs(dir string) (map[string]map[string]string, error) {
	files, err := parseDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			if st, ok := ts.Type.(*ast.StructType); ok {
				fields := map[string]string{}
				for _, fl := range st.Fields.List {
					for _, name := range fl.Names {
						fields[name.Name] = docText(fl.Doc, fl.Comment, name.Name)
					}
				}
				out[ts.Name.Name] = fields
			}
			return false
		})
	}
	return out, nil
}

// docText is a comment as one line, without the name it starts with.
func docText(doc, line *ast.CommentGroup, name string) string {
	g := doc
	if g == nil {
		g = line
	}
	if g == nil {
		return ""
	}
	s := strings.Join(strings.Fields(g.Text()), " ")
	for _, p := range []string{name + ": ", name + " is ", name + " are ", name + " "} {
		if strings.HasPrefix(s, p) {
			s = s[len(p):]
			break
		}
	}
	s = strings.TrimSpace(s)
	if s != "" && !strings.HasPrefix(s, "aima") {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}
