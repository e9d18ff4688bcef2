package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	ucli "github.com/urfave/cli/v3"

	"aima/client"
	"aima/errs"
	"aima/services"
	"aima/tools"
)

// flagNames maps input fields to CLI flag names where the natural
// kebab-case name is not what an operator types.
var flagNames = map[string]string{
	"timeout_seconds": "timeout",
	"args":            "arg",
	"aliases":         "alias",
}

func flagName(field string) string {
	if n, ok := flagNames[field]; ok {
		return n
	}
	return strings.ReplaceAll(field, "_", "-")
}

// opCommands generates `aima <group> <verb>` for every operation.
func opCommands(std IO) []*ucli.Command {
	groups := map[string]*ucli.Command{}
	var order []string
	for _, op := range tools.Registry() {
		g, ok := groups[op.Group()]
		if !ok {
			g = &ucli.Command{Name: op.Group(), Usage: groupUsage[op.Group()]}
			groups[op.Group()] = g
			order = append(order, op.Group())
		}
		g.Commands = append(g.Commands, opCommand(op, std))
	}
	sort.Strings(order)
	out := make([]*ucli.Command, 0, len(order))
	for _, name := range order {
		out = append(out, groups[name])
	}
	return out
}

func opCommand(op tools.Op, std IO) *ucli.Command {
	schema := op.InputSchema()
	cmd := &ucli.Command{
		Name:        op.Verb(),
		Usage:       firstSentence(op.Description()),
		Description: op.Description(),
	}
	if p := op.Positional(); p != "" {
		cmd.ArgsUsage = strings.ToUpper(p)
	}
	fields := make([]string, 0, len(schema.Properties))
	for name := range schema.Properties {
		fields = append(fields, name)
	}
	sort.Strings(fields)
	for _, name := range fields {
		prop := schema.Properties[name]
		flag := makeFlag(name, prop, op.Positional() == name)
		if flag != nil {
			cmd.Flags = append(cmd.Flags, flag)
		}
	}
	cmd.Action = func(ctx context.Context, c *ucli.Command) error {
		input, err := inputFromFlags(op, c)
		if err != nil {
			return err
		}
		return invoke(ctx, std, c, op, input)
	}
	return cmd
}

// groupUsage is the one-line help of each command group.
var groupUsage = map[string]string{
	"engine":    "the inference engines aima can run",
	"gpu":       "the host's NVIDIA GPUs: memory, utilization, processes and the services holding them",
	"health":    "check the daemon and its container runtime (Docker engine or Kubernetes cluster)",
	"inference": "chat with models through aima's gateway, list the model names it routes",
	"model":     "register and inspect models",
	"service":   "create, start, stop and observe inference services",
	"system":    "diagnose aima's host",
}

// firstSentence is the text up to the first ". " that starts a new
// sentence (so "e.g. x" does not end it).
func firstSentence(s string) string {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '.' && s[i+1] == ' ' && s[i+2] >= 'A' && s[i+2] <= 'Z' {
			return s[:i]
		}
	}
	return strings.TrimSuffix(s, ".")
}

func makeFlag(field string, prop *jsonschema.Schema, positional bool) ucli.Flag {
	name := flagName(field)
	usage := prop.Description
	if positional {
		usage += " (or give it as the argument)"
	}
	switch tools.SchemaType(prop) {
	case "boolean":
		return &ucli.BoolFlag{Name: name, Usage: usage}
	case "integer":
		return &ucli.IntFlag{Name: name, Usage: usage}
	case "array":
		return &ucli.StringSliceFlag{Name: name, Usage: usage + " (repeatable)"}
	default:
		return &ucli.StringFlag{Name: name, Usage: usage}
	}
}

// inputFromFlags builds the operation's JSON input from the command line:
// only flags the user set, plus the positional argument.
func inputFromFlags(op tools.Op, c *ucli.Command) (map[string]any, error) {
	schema := op.InputSchema()
	in := map[string]any{}
	for name, prop := range schema.Properties {
		fl := flagName(name)
		if !c.IsSet(fl) {
			continue
		}
		switch tools.SchemaType(prop) {
		case "boolean":
			in[name] = c.Bool(fl)
		case "integer":
			in[name] = c.Int(fl)
		case "array":
			in[name] = c.StringSlice(fl)
		default:
			in[name] = c.String(fl)
		}
	}
	args := c.Args().Slice()
	if p := op.Positional(); p != "" && len(args) > 0 {
		if _, dup := in[p]; dup {
			return nil, usageError{fmt.Errorf("give %s either as the argument or as --%s, not both", p, flagName(p))}
		}
		in[p] = args[0]
		args = args[1:]
	}
	if len(args) > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument(s): %s", strings.Join(args, " "))}
	}
	for _, r := range schema.Required {
		if _, ok := in[r]; !ok {
			hint := "--" + flagName(r)
			if op.Positional() == r {
				hint = strings.ToUpper(r) + " argument"
			}
			return nil, errs.Invalid(r, "%s is required (%s)", r, hint)
		}
	}
	return in, nil
}

// invoke calls the daemon and prints the result.
func invoke(ctx context.Context, std IO, c *ucli.Command, op tools.Op, input map[string]any) error {
	format := c.Root().String("output")
	cl := client.New(c.Root().String("addr"))
	cl.Frontend = tools.FrontendCLI
	var stream *client.Stream
	var prog *progress
	follow, _ := input["follow"].(bool)
	wait, _ := input["wait"].(bool)
	if _, drain := op.NewOutput().(*services.DrainResult); drain {
		wait = true // a drain always runs to its end: show its steps as start --wait does
	}
	if _, log := op.NewOutput().(*tools.LogsOutput); log {
		return printLog(ctx, std, cl, op, input, format)
	}
	switch {
	case follow:
		stream = &client.Stream{OnEvent: func(ev eventT) { fmt.Fprintln(std.Stdout, eventLine(ev)) }}
	case wait:
		prog = newProgress(std.Stderr)
		stream = &client.Stream{OnEvent: prog.event}
	}
	raw, err := cl.Call(ctx, op.Name(), input, stream)
	if prog != nil {
		prog.done()
	}
	if err != nil {
		return reattachHint(err, op, input, wait)
	}
	if follow && format == "table" {
		return nil
	}
	return render(std, format, op, raw)
}

// reattachHint adds to a lost connection during a wait on a service what
// the user can do: the operation goes on without the client (the daemon, or
// on a cluster the next leader, carries the start through), so follow it
// again with service wait. Other errors are returned as they are.
func reattachHint(err error, op tools.Op, input map[string]any, wait bool) error {
	id, _ := input["service_id"].(string)
	if !wait || id == "" || !errs.Is(err, errs.Unavailable) || !strings.HasPrefix(op.Name(), "service_") {
		return err
	}
	return errs.Wrap(errs.Unavailable, err, "lost the daemon while waiting on service %s; what it was doing goes on without this client "+
		"(after a daemon restart or a leader change, the next one resumes it): follow it again with `aima service wait %s --for running`", id, id)
}

// decodeOutput turns raw JSON into the op's typed output (for Text).
func decodeOutput(op tools.Op, raw json.RawMessage) (any, error) {
	v := op.NewOutput()
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, err
	}
	return derefAny(v), nil
}

// printLog prints a log as the daemon streams it, line by line as it is
// read: plain text lines for the table format, the JSON document (one line
// object per text line) for json. Nothing holds the whole log, except for
// yaml, which is converted from the whole JSON document. A log the daemon
// answers in one document (the previous run's kept lines) is rendered as
// usual.
func printLog(ctx context.Context, std IO, cl *client.Client, op tools.Op, input map[string]any, format string) error {
	accept, w := "text/plain", std.Stdout
	var doc bytes.Buffer
	switch format {
	case "json":
		accept = "application/json"
	case "yaml":
		accept, w = "application/json", &doc
	}
	raw, err := cl.CallWrite(ctx, op.Name(), input, accept, w)
	if err != nil {
		return err
	}
	if raw == nil {
		if format != "yaml" {
			return nil
		}
		raw = doc.Bytes()
	}
	return render(std, format, op, raw)
}
