package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	ucli "github.com/urfave/cli/v3"

	"aima/httpapi"
	"aima/jsonrpc"
	"aima/mcp"
	"aima/tools"
)

// TestEveryOperationOnEveryFrontEnd checks, registry-wide, that each
// operation is reachable as a CLI command, an HTTP route, an MCP tool and a
// JSON-RPC method, and that all four hand its input to the same decoder:
// an unknown field gives invalid_argument naming that field everywhere.
// No operation runs (the decoder refuses the input first), so no daemon
// state is needed.
func TestEveryOperationOnEveryFrontEnd(t *testing.T) {
	env := &tools.Env{}
	caller := tools.LocalCaller{Env: env}
	api := httptest.NewServer(httpapi.New(env, nil, nil).Handler())
	defer api.Close()
	rpc := httptest.NewServer(jsonrpc.Handler(caller, jsonrpc.Options{}))
	defer rpc.Close()
	mc, err := mcpclient.NewInProcessClient(mcp.NewServer(caller, mcp.Options{Version: "test"}))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	ctx := t.Context()
	if err := mc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var ir mcpgo.InitializeRequest
	ir.Params.ProtocolVersion = mcpgo.LATEST_PROTOCOL_VERSION
	ir.Params.ClientInfo = mcpgo.Implementation{Name: "frontends-test", Version: "1"}
	if _, err := mc.Initialize(ctx, ir); err != nil {
		t.Fatal(err)
	}
	listed, err := mc.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	mcpTools := map[string]mcpgo.Tool{}
	for _, tool := range listed.Tools {
		mcpTools[tool.Name] = tool
	}
	root := NewRoot(IO{Stdout: io.Discard, Stderr: io.Discard, Stdin: strings.NewReader("")})
	probe := json.RawMessage(`{"no_such_field":1}`)

	for _, op := range tools.Registry() {
		t.Run(op.Name(), func(t *testing.T) {
			if cliCommand(root, op.Group(), op.Verb()) == nil {
				t.Errorf("CLI: no command `aima %s %s`", op.Group(), op.Verb())
			}

			resp, err := http.Post(api.URL+"/api/"+op.Group()+"/"+op.Verb(), "application/json", bytes.NewReader(probe))
			if err != nil {
				t.Fatal(err)
			}
			var body httpapi.ErrorBody
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || body.Error.Field != "no_such_field" {
				t.Errorf("HTTP: status %d, error %+v; want 400 naming no_such_field", resp.StatusCode, body.Error)
			}

			tool, ok := mcpTools[op.Name()]
			if !ok {
				t.Fatalf("MCP: tool %s not listed", op.Name())
			}
			if tool.Annotations.ReadOnlyHint == nil || *tool.Annotations.ReadOnlyHint != op.Annotations().ReadOnly {
				t.Errorf("MCP: readOnlyHint does not match the registry")
			}
			var call mcpgo.CallToolRequest
			call.Params.Name = op.Name()
			call.Params.Arguments = map[string]any{"no_such_field": 1}
			res, err := mc.CallTool(ctx, call)
			if err != nil {
				t.Fatalf("MCP: %v", err)
			}
			if !res.IsError || !strings.Contains(toolText(res), "no_such_field") {
				t.Errorf("MCP: result %+v; want an isError result naming no_such_field", res)
			}

			req := `{"jsonrpc":"2.0","id":1,"method":"` + jsonrpc.MethodName(op) + `","params":` + string(probe) + `}`
			resp, err = http.Post(rpc.URL, "application/json", strings.NewReader(req))
			if err != nil {
				t.Fatal(err)
			}
			var rr struct {
				Error *struct {
					Code int `json:"code"`
					Data struct {
						Kind  string `json:"kind"`
						Field string `json:"field"`
					} `json:"data"`
				} `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&rr)
			resp.Body.Close()
			if rr.Error == nil || rr.Error.Code != -32602 || rr.Error.Data.Field != "no_such_field" {
				t.Errorf("JSON-RPC: %+v; want -32602 naming no_such_field", rr.Error)
			}
		})
	}
}

func cliCommand(root *ucli.Command, group, verb string) *ucli.Command {
	for _, g := range root.Commands {
		if g.Name != group {
			continue
		}
		for _, c := range g.Commands {
			if c.Name == verb {
				return c
			}
		}
	}
	return nil
}

func toolText(res *mcpgo.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcpgo.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
