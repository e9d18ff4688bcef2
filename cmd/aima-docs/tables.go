package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	ucli "github.com/urfave/cli/v3"

	"aima/cli"
	"aima/errs"
	"aima/httperr"
	"aima/jsonrpc"
	"aima/mcp"
	"aima/tools"
)

// renderCLI is the command tree of `aima`: the global flags, then every
// command with its arguments, flags and help line.
func renderCLI(string) (string, error) {
	root := cli.NewRoot(cli.IO{Stdout: io.Discard, Stderr: io.Discard})
	var b strings.Builder
	b.WriteString("| global flag | env | default | meaning |\n|---|---|---|---|\n")
	for _, f := range root.VisibleFlags() {
		d, ok := f.(ucli.DocGenerationFlag)
		if !ok {
			continue
		}
		envs := make([]string, 0, len(d.GetEnvVars()))
		for _, e := range d.GetEnvVars() {
			envs = append(envs, code(e))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", code(flagForm(f)), strings.Join(envs, ", "), code(strings.Trim(d.GetValue(), `"`)), cell(d.GetUsage()))
	}
	b.WriteString("\n| command | what it does | flags |\n|---|---|---|\n")
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			if c.Hidden || c.Name == "help" {
				continue
			}
			name := path + " " + c.Name
			if len(c.Commands) > 0 {
				walk(name, c.Commands)
				continue
			}
			if c.ArgsUsage != "" {
				name += " " + c.ArgsUsage
			}
			var flags []string
			for _, f := range c.VisibleFlags() {
				if f.Names()[0] == "help" {
					continue
				}
				s := code(flagForm(f))
				if d, ok := f.(ucli.DocGenerationFlag); ok && len(d.GetEnvVars()) > 0 {
					s += " (`" + strings.Join(d.GetEnvVars(), "`, `") + "`)"
				}
				flags = append(flags, s)
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", code(name), cell(c.Usage), strings.Join(flags, " "))
		}
	}
	walk("aima", root.Commands)
	return b.String(), nil
}

// flagForm is a flag as typed: --name, --name N, --name V (repeatable).
func flagForm(f ucli.Flag) string {
	s := "--" + f.Names()[0]
	d, ok := f.(ucli.DocGenerationFlag)
	if !ok || !d.TakesValue() {
		return s
	}
	switch d.TypeName() {
	case "int", "int64", "uint":
		s += " N"
	default:
		s += " " + strings.ToUpper(strings.ReplaceAll(f.Names()[0], "-", "_"))
	}
	if m, ok := f.(ucli.DocGenerationMultiValueFlag); ok && m.IsMultiValueFlag() {
		s += " …"
	}
	return s
}

// annotations lists an operation's hints as MCP serves them, plus aima's
// long-running mark.
func annotations(t mcpgo.Tool) string {
	var out []string
	a := t.Annotations
	for _, h := range []struct {
		name string
		v    *bool
	}{{"read-only", a.ReadOnlyHint}, {"destructive", a.DestructiveHint}, {"idempotent", a.IdempotentHint}} {
		if h.v != nil && *h.v {
			out = append(out, h.name)
		}
	}
	if t.Meta != nil && t.Meta.AdditionalFields[mcp.MetaLongRunning] == true {
		out = append(out, "long-running")
	}
	return strings.Join(out, ", ")
}

// frontEnds says how each front-end serves op: the CLI command, the HTTP
// route (GET for read-only operations, POST for all; httpapi), the
// JSON-RPC method and the MCP tool.
func frontEnds(op tools.Op) (cliCmd, route, method string) {
	cliCmd = "aima " + op.Group() + " " + op.Verb()
	if p := op.Positional(); p != "" {
		cliCmd += " " + strings.ToUpper(p)
	}
	route = "POST /api/" + op.Group() + "/" + op.Verb()
	if op.Annotations().ReadOnly {
		route = "GET, " + route
	}
	return cliCmd, route, jsonrpc.MethodName(op)
}

func renderTools(string) (string, error) {
	root := cli.NewRoot(cli.IO{Stdout: io.Discard, Stderr: io.Discard})
	var b strings.Builder
	b.WriteString("| tool | what it does | hints | CLI | HTTP | JSON-RPC |\n|---|---|---|---|---|---|\n")
	for _, op := range tools.Registry() {
		t := mcp.Tool(op)
		c, r, m := frontEnds(op)
		if g := root.Command(op.Group()); g == nil || g.Command(op.Verb()) == nil {
			return "", fmt.Errorf("%s has no CLI command %q", op.Name(), c)
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s | %s | %s |\n", op.Name(), op.Name(), cell(firstSentence(op.Description())), annotations(t), code(c), code(r), code(m))
	}
	return b.String(), nil
}

// renderToolDetails is each tool's title, whole description and
// parameters, as an MCP client sees them.
func renderToolDetails(string) (string, error) {
	var b strings.Builder
	for _, op := range tools.Registry() {
		t := mcp.Tool(op)
		fmt.Fprintf(&b, "### %s\n\n**%s**", op.Name(), t.Title)
		if a := annotations(t); a != "" {
			fmt.Fprintf(&b, " (%s)", a)
		}
		fmt.Fprintf(&b, ". %s\n\n", op.Description())
		in := op.InputSchema()
		if len(in.Properties) == 0 {
			b.WriteString("No parameters.\n\n")
			continue
		}
		required := map[string]bool{}
		for _, r := range in.Required {
			required[r] = true
		}
		names := make([]string, 0, len(in.Properties))
		for n := range in.Properties {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString("| parameter | type | required | meaning |\n|---|---|---|---|\n")
		for _, n := range names {
			p := in.Properties[n]
			req := ""
			if required[n] {
				req = "yes"
			}
			typ := tools.SchemaType(p)
			if typ == "array" && p.Items != nil {
				typ = "array of " + tools.SchemaType(p.Items)
			}
			if len(p.Enum) > 0 {
				var vals []string
				for _, v := range p.Enum {
					vals = append(vals, fmt.Sprint(v))
				}
				typ += ": " + strings.Join(vals, ", ")
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", n, cell(typ), req, cell(p.Description))
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// firstSentence is the text up to the first ". " before a capital letter.
func firstSentence(s string) string {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '.' && s[i+1] == ' ' && s[i+2] >= 'A' && s[i+2] <= 'Z' {
			return s[:i+1]
		}
	}
	return s
}

func renderJSONRPC(string) (string, error) {
	var b strings.Builder
	b.WriteString("| method | what it does | read-only mode |\n|---|---|---|\n")
	for _, op := range tools.Registry() {
		ro := "hidden"
		if op.Annotations().ReadOnly {
			ro = "served"
		}
		fmt.Fprintf(&b, "| [`%s`](tools.md#%s) | %s | %s |\n", jsonrpc.MethodName(op), op.Name(), cell(firstSentence(op.Description())), ro)
	}
	b.WriteString("\nNotifications sent while a call runs (`id` is the call's request id):\n\n")
	b.WriteString("| notification | params |\n|---|---|\n")
	fmt.Fprintf(&b, "| `%s` | `{\"id\": …, \"event\": {…}}`: a progress event (phase, pull bytes, status) |\n", jsonrpc.MethodProgress)
	fmt.Fprintf(&b, "| `%s` | `{\"id\": …, \"line\": {…}}`: an engine log line |\n", jsonrpc.MethodLog)
	fmt.Fprintf(&b, "| `%s` | `{\"id\": …, \"delta\": {\"time\": …, \"text\": …}}`: a piece of `inference.chat`'s answer as it arrives |\n", jsonrpc.MethodDelta)
	return b.String(), nil
}

// renderErrors is the kind → code table, each column read from the
// front-end that owns the mapping.
func renderErrors(root string) (string, error) {
	docs, err := constDocs(root+"/errs", "Kind")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| kind | meaning | HTTP status | JSON-RPC code | CLI exit code | MCP |\n|---|---|---|---|---|---|\n")
	for _, k := range errs.AllKinds {
		if docs[string(k)] == "" {
			return "", fmt.Errorf("errs.%s has no comment: say what it means", k)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %d | %d | %d | `isError` result, text `%s: …` |\n", k, cell(docs[string(k)]),
			httperr.Status(k), jsonrpc.CodeFor(k), cli.ExitCode(k), k)
	}
	return b.String(), nil
}
