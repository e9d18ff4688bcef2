// Package tools declares every aima operation once: a snake_case name, a
// description written for a model that has never seen aima, typed input and
// output structs, and annotations. The MCP, JSON-RPC, HTTP and CLI
// front-ends are loops over Registry(); none of them implements an
// operation itself. tools imports the domain, never a transport.
package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"

	"aima/errs"
	"aima/events"
	"aima/services"
)

// Annotations tell clients how an operation behaves (MCP tool hints).
type Annotations struct {
	ReadOnly    bool `json:"read_only"`
	Destructive bool `json:"destructive"`
	Idempotent  bool `json:"idempotent"`
	// LongRunning operations may take minutes and report progress.
	LongRunning bool `json:"long_running"`
}

// Reporter receives what a long or streaming operation produces before its
// result: progress events and log lines. Front-ends turn them into MCP
// notifications, JSON-RPC notifications, SSE events or terminal output.
type Reporter interface {
	Event(events.Event)
	Log(LogLine)
	Delta(ChatDelta)
}

// LogSink is a Reporter that delivers log lines itself as they are read
// (an HTTP response written line by line) instead of having the operation
// collect them into its output. service_logs checks for it: with a sink the
// lines go to Log, one by one, and the output comes back without them
// (lines empty, total counting them), so no front-end that streams holds a
// whole log in memory. Front-ends whose protocol answers with one document
// (MCP, JSON-RPC) pass no sink and get the lines in the output.
type LogSink interface {
	Reporter
	// BeginLogs is called once, before the first line, with the output's
	// fields other than the lines (the service and container IDs).
	BeginLogs(LogsOutput)
	// Flush is called when no further line is ready yet (a follow caught
	// up): deliver what is buffered.
	Flush()
	// NeedsTimes says whether the sink shows each line's time, given the
	// input's timestamps flag; without, the runtime may skip them.
	NeedsTimes(timestamps bool) bool
}

// NopReporter drops everything.
type NopReporter struct{}

// Event implements Reporter.
func (NopReporter) Event(events.Event) {}

// Log implements Reporter.
func (NopReporter) Log(LogLine) {}

// Delta implements Reporter.
func (NopReporter) Delta(ChatDelta) {}

// Op is a type-erased operation, so a registry can hold all of them.
type Op interface {
	Name() string // snake_case: "service_start"
	Group() string
	Verb() string
	Description() string
	Annotations() Annotations
	// Positional is the input field the CLI takes as its argument.
	Positional() string
	InputSchema() *jsonschema.Schema
	// OutputSchema is derived on each call (callers keep what they need).
	OutputSchema() *jsonschema.Schema
	// Call decodes raw strictly, runs the operation and returns its output.
	Call(ctx context.Context, dom *Domain, raw json.RawMessage, rep Reporter) (any, error)
	// Text renders an output as a short human summary.
	Text(out any) string
	// NewOutput returns a pointer to a zero output (for decoding).
	NewOutput() any
}

// Spec declares one operation with typed input and output. Register it
// with Declare, which derives the schemas from In and Out.
type Spec[In, Out any] struct {
	Name        string
	Description string
	Annotations
	Positional string
	Run        func(ctx context.Context, dom *Domain, in In, rep Reporter) (Out, error)
	Render     func(Out) string
}

// typedOp is a Spec with its input schema, implementing Op. The output
// schema is derived when asked for (OutputSchema): only the MCP tools'
// description and the snapshots read it, once, and the schemas of every
// output type, kept as trees, were 6 MiB of every daemon's heap for good.
type typedOp[In, Out any] struct {
	spec Spec[In, Out]
	in   *jsonschema.Schema
}

// schemaOptions give the domain's closed sets their values in every
// schema, so clients see them as data (an enum), not only in prose.
var schemaOptions = &jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
	reflect.TypeFor[services.FailureKind](): enumSchema(services.AllFailureKinds),
}}

func enumSchema[T ~string](values []T) *jsonschema.Schema {
	s := &jsonschema.Schema{Type: "string"}
	for _, v := range values {
		s.Enum = append(s.Enum, string(v))
	}
	return s
}

// Declare turns a Spec into an Op; a type whose schema cannot be derived is
// a programming error and panics at start-up.
func Declare[In, Out any](spec Spec[In, Out]) Op {
	in, err := jsonschema.For[In](schemaOptions)
	if err != nil {
		panic(fmt.Sprintf("tools: input schema of %s: %v", spec.Name, err))
	}
	if _, err := jsonschema.For[Out](schemaOptions); err != nil {
		panic(fmt.Sprintf("tools: output schema of %s: %v", spec.Name, err))
	}
	if in.Properties == nil {
		in.Properties = map[string]*jsonschema.Schema{}
	}
	in.Description = spec.Description
	return &typedOp[In, Out]{spec: spec, in: in}
}

func (o *typedOp[In, Out]) Name() string { return o.spec.Name }

func (o *typedOp[In, Out]) Group() string { g, _, _ := strings.Cut(o.spec.Name, "_"); return g }

func (o *typedOp[In, Out]) Verb() string { _, v, _ := strings.Cut(o.spec.Name, "_"); return v }

func (o *typedOp[In, Out]) Description() string { return o.spec.Description }

func (o *typedOp[In, Out]) Annotations() Annotations { return o.spec.Annotations }

func (o *typedOp[In, Out]) Positional() string { return o.spec.Positional }

func (o *typedOp[In, Out]) InputSchema() *jsonschema.Schema { return o.in }

// OutputSchema derives the output schema anew: Declare checked that it can.
func (o *typedOp[In, Out]) OutputSchema() *jsonschema.Schema {
	out, err := jsonschema.For[Out](schemaOptions)
	if err != nil {
		panic(fmt.Sprintf("tools: output schema of %s: %v", o.spec.Name, err))
	}
	return out
}

func (o *typedOp[In, Out]) Call(ctx context.Context, dom *Domain, raw json.RawMessage, rep Reporter) (any, error) {
	var in In
	if err := Decode(raw, o.in, &in); err != nil {
		return nil, err
	}
	if rep == nil {
		rep = NopReporter{}
	}
	if dom.ReadOnly && !o.spec.ReadOnly {
		return nil, errs.ReadOnly(o.spec.Name)
	}
	return o.spec.Run(ctx, dom, in, rep)
}

func (o *typedOp[In, Out]) Text(out any) string {
	if v, ok := out.(Out); ok && o.spec.Render != nil {
		return o.spec.Render(v)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return string(b)
}

func (o *typedOp[In, Out]) NewOutput() any { return new(Out) }

var (
	registryOnce sync.Once
	registry     []Op
	byName       map[string]Op
)

// Registry returns every operation, sorted by name. It is built once and
// shared: every front-end reads the same Ops and schemas, and none may
// change them.
func Registry() []Op {
	registryOnce.Do(func() {
		registry = build()
		byName = map[string]Op{}
		for _, op := range registry {
			byName[op.Name()] = op
		}
	})
	return registry
}

// build declares every operation anew, sorted by name.
func build() []Op {
	var ops []Op
	ops = append(ops, modelOps()...)
	ops = append(ops, engineOps()...)
	ops = append(ops, serviceOps()...)
	ops = append(ops, inferenceOps()...)
	ops = append(ops, systemOps()...)
	ops = append(ops, gpuOps()...)
	ops = append(ops, gpuCordonOps()...)
	ops = append(ops, healthOp())
	sort.Slice(ops, func(i, j int) bool { return ops[i].Name() < ops[j].Name() })
	return ops
}

// Lookup finds an operation by snake_case name, dotted name
// ("service.start") or group/verb path.
func Lookup(name string) (Op, bool) {
	Registry()
	name = strings.NewReplacer(".", "_", "/", "_").Replace(name)
	op, ok := byName[name]
	return op, ok
}

// Visible returns the operations a front-end serves; read-only mode hides
// mutating ones.
func Visible(readOnly bool) []Op {
	var out []Op
	for _, op := range Registry() {
		if readOnly && !op.Annotations().ReadOnly {
			continue
		}
		out = append(out, op)
	}
	return out
}
