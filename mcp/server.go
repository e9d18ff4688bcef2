// Package mcp serves aima's operations as Model Context Protocol tools. It
// is a front-end like httpapi: one tool per operation of tools.Visible,
// with the operation's own name, description, JSON schemas and
// annotations, so MCP cannot drift from the CLI and the HTTP API. It
// implements no operation: a tools.Caller runs them, in the daemon
// (tools.LocalCaller, for /mcp) or through the daemon's HTTP API
// (client.Caller, for `aima mcp` on stdio).
//
// Beyond tools it serves resources (aima://services/{id}, its /logs, and
// aima://models/{id}) with subscriptions, prompts (diagnose-service,
// deploy-model) and completions of service and model IDs: all of them read
// through the same caller, so `aima mcp` serves them too.
//
// Errors: every failure of an operation is a tool result with isError set,
// whose text is "<kind>: <message>" (the message the other front-ends show)
// and whose _meta["aima/error"] holds {code, message, field}. Protocol
// errors are left to mcp-go (unknown tool, malformed JSON-RPC).
//
// Progress: with a progressToken, phases, pull bytes (throttled) and engine
// milestones arrive as notifications/progress; they are best-effort, and the
// final state is always in the tool result.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"aima/errs"
	"aima/tools"
)

// Options configure NewServer.
type Options struct {
	// ReadOnly lists only read-only operations; the others are not tools at
	// all, so a client cannot even try them.
	ReadOnly bool
	// Version is reported to clients as the server version.
	Version string
	// Context ends the resource subscriptions' watches (nil: never; they
	// still end with their session).
	Context context.Context
	// Logger receives subscription warnings; nil means slog.Default().
	Logger *slog.Logger
}

// instructions tell a model what aima is and the usual order of calls.
const instructions = "aima runs AI inference engines (vLLM, SGLang, llama.cpp) as containers on Docker or Kubernetes. " +
	"Usual flow: model_add or model_scan (register a model on the daemon's disk), service_create " +
	"(engine + model), service_start with wait=true (pass a progressToken to follow the phases), then " +
	"service_status, service_logs and service_events to observe it (or read and subscribe to the resource " +
	"aima://services/{id}; the diagnose-service prompt gathers what a failed service left). A failed call returns isError with " +
	"text \"<kind>: <message>\", where kind is invalid_argument, not_found, conflict, unavailable, " +
	"deadline_exceeded, canceled or internal."

// MetaLongRunning marks, in a tool's _meta, operations that may take minutes
// and report progress, so a client knows to send a progressToken.
const MetaLongRunning = "aima/longRunning"

// MetaError is the result _meta key holding {code, message, field} of a
// failed call. It lives in _meta, not structuredContent, because clients
// validate structuredContent against the tool's output schema.
const MetaError = "aima/error"

// NewServer builds an MCP server with one tool per visible operation, each
// run through caller. Serve it with Handler (HTTP) or ServeStdio.
func NewServer(caller tools.Caller, opts Options) *server.MCPServer {
	version := opts.Version
	if version == "" {
		version = "unknown"
	}
	base, log := opts.Context, opts.Logger
	if base == nil {
		base = context.Background()
	}
	if log == nil {
		log = slog.Default()
	}
	w := newWatcher(base, caller, log)
	comp := completer{caller: caller}
	s := server.NewMCPServer("aima", version,
		server.WithToolCapabilities(false),
		server.WithResourceCapabilities(true, false),
		server.WithPromptCapabilities(false),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(comp),
		server.WithResourceCompletionProvider(comp),
		server.WithHooks(w.hooks()),
		server.WithLogging(),
		server.WithRecovery(),
		server.WithInstructions(instructions),
	)
	w.srv = s
	for _, op := range tools.Visible(opts.ReadOnly) {
		s.AddTool(Tool(op), handler(caller, op))
	}
	addResources(s, caller)
	addPrompts(s, caller, opts.ReadOnly)
	return s
}

// Tool describes op as an MCP tool, exactly as tools/list serves it (the
// snapshots in schemas/ and the generated tool reference read it too). A
// schema that cannot be marshalled is a programming error, as it is in
// tools.Declare.
func Tool(op tools.Op) mcpgo.Tool {
	in, err := json.Marshal(op.InputSchema())
	if err != nil {
		panic(fmt.Sprintf("mcp: input schema of %s: %v", op.Name(), err))
	}
	a := op.Annotations()
	title := toolTitle(op.Name())
	opts := []mcpgo.ToolOption{
		mcpgo.WithDescription(op.Description()),
		mcpgo.WithToolTitle(title),
		mcpgo.WithRawInputSchema(in),
		mcpgo.WithToolAnnotation(mcpgo.ToolAnnotation{
			Title:           title,
			ReadOnlyHint:    mcpgo.ToBoolPtr(a.ReadOnly),
			DestructiveHint: mcpgo.ToBoolPtr(a.Destructive),
			IdempotentHint:  mcpgo.ToBoolPtr(a.Idempotent),
			OpenWorldHint:   mcpgo.ToBoolPtr(false),
		}),
	}
	// MCP requires an object output schema; every aima output is a struct.
	if out := op.OutputSchema(); out != nil && out.Type == "object" {
		raw, err := json.Marshal(out)
		if err != nil {
			panic(fmt.Sprintf("mcp: output schema of %s: %v", op.Name(), err))
		}
		opts = append(opts, mcpgo.WithRawOutputSchema(raw))
	}
	tool := mcpgo.NewTool(op.Name(), opts...)
	// NewTool presets an object InputSchema, which conflicts with the raw one.
	tool.InputSchema = mcpgo.ToolInputSchema{}
	if a.LongRunning {
		tool.Meta = &mcpgo.Meta{AdditionalFields: map[string]any{MetaLongRunning: true}}
	}
	return tool
}

// toolTitle turns "service_start" into "Service start".
func toolTitle(name string) string {
	t := strings.ReplaceAll(name, "_", " ")
	if t == "" {
		return t
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// handler runs op through caller, turning its reports into notifications
// and its outcome into a tool result. It never returns a Go error: argument
// and operation failures are isError results the model can read and fix.
func handler(caller tools.Caller, op tools.Op) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		raw, err := arguments(req)
		if err != nil {
			return errorResult(err), nil
		}
		var token mcpgo.ProgressToken
		if req.Params.Meta != nil {
			token = req.Params.Meta.ProgressToken
		}
		n := newNotifier(ctx, server.ServerFromContext(ctx), token)
		out, err := caller.Call(ctx, op, raw, n)
		n.finish(ctx)
		if err != nil {
			return errorResult(err), nil
		}
		return successResult(op, out), nil
	}
}

// arguments returns the call's arguments as raw JSON: a JSON object, or
// empty when the client sent none. Anything else is InvalidArgument.
//
// mcp-go v1.2.1 turns every handler error into -32603, and a tool handler
// cannot produce -32602, so non-object arguments are an isError result like
// every other argument problem (as SEP-1303 recommends for input errors).
func arguments(req mcpgo.CallToolRequest) (json.RawMessage, error) {
	raw := bytes.TrimSpace(req.Params.RawArguments)
	if len(raw) == 0 && req.Params.Arguments != nil {
		// In-process clients set Arguments without the wire bytes.
		b, err := json.Marshal(req.Params.Arguments)
		if err != nil {
			return nil, errs.Invalid("", "arguments cannot be encoded as JSON: %v", err)
		}
		raw = b
	}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, errs.Invalid("", "arguments must be a JSON object, not %s", jsonKind(raw[0]))
	}
	return json.RawMessage(raw), nil
}

func jsonKind(first byte) string {
	switch {
	case first == '[':
		return "an array"
	case first == '"':
		return "a string"
	case first == 't' || first == 'f':
		return "a boolean"
	case first == '-' || (first >= '0' && first <= '9'):
		return "a number"
	}
	return "invalid JSON"
}
