package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"aima/errs"
	"aima/tools"
)

// The resource URI templates. {id} is a service or model ID (or name).
const (
	ServiceURITemplate = "aima://services/{id}"
	LogsURITemplate    = "aima://services/{id}/logs"
	ModelURITemplate   = "aima://models/{id}"
)

// resourceLogLines is how many log lines aima://services/{id}/logs holds.
const resourceLogLines = 200

// resourceRef is a parsed aima:// URI.
type resourceRef struct {
	kind string // "service", "logs" or "model"
	id   string
}

// parseURI reads an aima resource URI; anything else is InvalidArgument.
func parseURI(uri string) (resourceRef, error) {
	rest, ok := strings.CutPrefix(uri, "aima://")
	parts := strings.Split(rest, "/")
	switch {
	case ok && len(parts) == 2 && parts[0] == "services" && parts[1] != "":
		return resourceRef{"service", parts[1]}, nil
	case ok && len(parts) == 3 && parts[0] == "services" && parts[1] != "" && parts[2] == "logs":
		return resourceRef{"logs", parts[1]}, nil
	case ok && len(parts) == 2 && parts[0] == "models" && parts[1] != "":
		return resourceRef{"model", parts[1]}, nil
	}
	return resourceRef{}, errs.Invalid("uri", "unknown resource %q: aima serves %s, %s and %s", uri, ServiceURITemplate, LogsURITemplate, ModelURITemplate)
}

// call runs operation name through caller and decodes its output into out:
// the typed value of a LocalCaller and the raw JSON of a client.Caller both
// go through JSON, so resources and prompts read the same either way.
func call(ctx context.Context, caller tools.Caller, name string, in, out any, rep tools.Reporter) error {
	op, ok := tools.Lookup(name)
	if !ok {
		return errs.New(errs.Internal, "no operation %s", name)
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encode input of %s", name)
	}
	res, err := caller.Call(ctx, op, raw, rep)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	b, ok := res.(json.RawMessage)
	if !ok {
		if b, err = json.Marshal(res); err != nil {
			return errs.Wrap(errs.Internal, err, "encode output of %s", name)
		}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return errs.Wrap(errs.Internal, err, "decode output of %s", name)
	}
	return nil
}

// protocolError is how a resource, prompt or completion failure reaches the
// client: mcp-go makes it a JSON-RPC error whose message is this text, the
// kind first as in tool results.
func protocolError(err error) error {
	return fmt.Errorf("%s: %s", errs.KindOf(err), err.Error())
}

// addResources registers the three resource templates, read through caller.
func addResources(s *server.MCPServer, caller tools.Caller) {
	read := func(ctx context.Context, req mcpgo.ReadResourceRequest) ([]mcpgo.ResourceContents, error) {
		contents, err := readResource(ctx, caller, req.Params.URI)
		if err != nil {
			return nil, protocolError(err)
		}
		return contents, nil
	}
	s.AddResourceTemplate(mcpgo.NewResourceTemplate(ServiceURITemplate, "service",
		mcpgo.WithTemplateDescription("A service's record, as service_status returns it: status, phase, failure kind and reason, endpoint, restarts. Subscribe to be told when its status changes."),
		mcpgo.WithTemplateMIMEType("application/json")), read)
	s.AddResourceTemplate(mcpgo.NewResourceTemplate(LogsURITemplate, "service logs",
		mcpgo.WithTemplateDescription(fmt.Sprintf("The last %d lines the service's engine printed (stdout and stderr). Subscribe to be told when the service's status changes (a new run has new logs).", resourceLogLines)),
		mcpgo.WithTemplateMIMEType("text/plain")), read)
	s.AddResourceTemplate(mcpgo.NewResourceTemplate(ModelURITemplate, "model",
		mcpgo.WithTemplateDescription("A registered model's record, as model_get returns it: path, format, architecture, size."),
		mcpgo.WithTemplateMIMEType("application/json")), read)
}

// readResource reads one aima:// URI through the operations.
func readResource(ctx context.Context, caller tools.Caller, uri string) ([]mcpgo.ResourceContents, error) {
	ref, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	switch ref.kind {
	case "service":
		err = call(ctx, caller, "service_status", tools.ServiceRef{ServiceID: ref.id}, &out, nil)
	case "model":
		err = call(ctx, caller, "model_get", tools.ModelRef{ModelID: ref.id}, &out, nil)
	case "logs":
		tail := resourceLogLines
		var logs tools.LogsOutput
		if err := call(ctx, caller, "service_logs", tools.ServiceLogsInput{ServiceID: ref.id, Tail: &tail}, &logs, nil); err != nil {
			// A service that never ran has no logs yet: empty, not an
			// error, when the service itself exists.
			if !errs.Is(err, errs.NotFound) || call(ctx, caller, "service_status", tools.ServiceRef{ServiceID: ref.id}, nil, nil) != nil {
				return nil, err
			}
		}
		var b strings.Builder
		for _, l := range logs.Lines {
			b.WriteString(l.Text)
			b.WriteByte('\n')
		}
		return []mcpgo.ResourceContents{mcpgo.TextResourceContents{URI: uri, MIMEType: "text/plain", Text: b.String()}}, nil
	}
	if err != nil {
		return nil, err
	}
	return []mcpgo.ResourceContents{mcpgo.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(out)}}, nil
}

// completer offers service and model IDs (and names) for prompt arguments
// (service_id, model_id) and resource template arguments ({id}).
type completer struct{ caller tools.Caller }

// maxCompletions is MCP's limit on values in one completion.
const maxCompletions = 100

// CompletePromptArgument implements server.PromptCompletionProvider.
func (c completer) CompletePromptArgument(ctx context.Context, _ string, arg mcpgo.CompleteArgument, _ mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	switch arg.Name {
	case "service_id":
		return c.complete(ctx, "service", arg.Value)
	case "model_id":
		return c.complete(ctx, "model", arg.Value)
	}
	return &mcpgo.Completion{Values: []string{}}, nil
}

// CompleteResourceArgument implements server.ResourceCompletionProvider.
func (c completer) CompleteResourceArgument(ctx context.Context, uri string, arg mcpgo.CompleteArgument, _ mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	if arg.Name != "id" {
		return &mcpgo.Completion{Values: []string{}}, nil
	}
	if strings.HasPrefix(uri, "aima://models/") {
		return c.complete(ctx, "model", arg.Value)
	}
	return c.complete(ctx, "service", arg.Value)
}

// complete lists the IDs of services or models whose ID or name starts with
// prefix, IDs first then names, sorted.
func (c completer) complete(ctx context.Context, kind, prefix string) (*mcpgo.Completion, error) {
	var list struct {
		Items []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"items"`
	}
	if err := call(ctx, c.caller, kind+"_list", struct{}{}, &list, nil); err != nil {
		return nil, protocolError(err)
	}
	items := list.Items
	seen := map[string]bool{}
	var ids, names []string
	for _, it := range items {
		if strings.HasPrefix(it.ID, prefix) && !seen[it.ID] {
			seen[it.ID] = true
			ids = append(ids, it.ID)
		}
	}
	for _, it := range items {
		if it.Name != "" && strings.HasPrefix(it.Name, prefix) && !seen[it.Name] {
			seen[it.Name] = true
			names = append(names, it.Name)
		}
	}
	sort.Strings(ids)
	sort.Strings(names)
	values := append(ids, names...)
	out := &mcpgo.Completion{Values: values, Total: len(values)}
	if len(values) > maxCompletions {
		out.Values, out.HasMore = values[:maxCompletions], true
	}
	if out.Values == nil {
		out.Values = []string{}
	}
	return out, nil
}
