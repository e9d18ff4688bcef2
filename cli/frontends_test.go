package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	ucli "github.com/urfave/cli/v3"

	"aima/errs"
	"aima/httpapi"
	"aima/httperr"
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
	fe := newFrontEnds(t)
	api, rpc, mc, ctx := fe.api, fe.rpc, fe.mc, t.Context()
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
			var body httperr.Body
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

			if rpcErr := rpcCall(t, rpc.URL, op, probe); rpcErr.Code != -32602 || rpcErr.Data.Field != "no_such_field" {
				t.Errorf("JSON-RPC: %+v; want -32602 naming no_such_field", rpcErr)
			}
		})
	}
}

// frontEnds serves the registry, without a domain behind it (tools.Domain
// is empty), on HTTP, JSON-RPC over HTTP and in-process MCP.
type frontEnds struct {
	api, rpc *httptest.Server
	mc       *mcpclient.Client
}

func newFrontEnds(t *testing.T) frontEnds {
	t.Helper()
	env := &tools.Domain{}
	caller := tools.LocalCaller{Domain: env}
	fe := frontEnds{
		api: httptest.NewServer(httpapi.New(env, nil, nil).Handler()),
		rpc: httptest.NewServer(jsonrpc.Handler(caller, jsonrpc.Options{})),
	}
	t.Cleanup(fe.api.Close)
	t.Cleanup(fe.rpc.Close)
	mc, err := mcpclient.NewInProcessClient(mcp.NewServer(caller, mcp.Options{Version: "test"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	if err := mc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var ir mcpgo.InitializeRequest
	ir.Params.ProtocolVersion = mcpgo.LATEST_PROTOCOL_VERSION
	ir.Params.ClientInfo = mcpgo.Implementation{Name: "frontends-test", Version: "1"}
	if _, err := mc.Initialize(t.Context(), ir); err != nil {
		t.Fatal(err)
	}
	fe.mc = mc
	return fe
}

// Input the decoder or an operation's own checks refuse before any domain
// call is invalid_argument naming the field with the same message on every
// front-end (CLI exit code 2, HTTP 400 for GET and POST, JSON-RPC -32602,
// an MCP error result): a since before 1970 (given as a time or as a
// duration reaching back before it), a negative after, a null element in
// an array.
func TestBadInputOnEveryFrontEnd(t *testing.T) {
	fe := newFrontEnds(t)
	cases := []struct {
		op, field, msg string
		input          map[string]any
		cli            []string // nil: the CLI cannot send this input
	}{
		{op: "service_logs", field: "since", msg: "before 1970",
			input: map[string]any{"service_id": "s", "since": "1969-12-31T23:59:59Z"}, cli: []string{"service", "logs", "s", "--since", "1969-12-31T23:59:59Z"}},
		{op: "service_logs", field: "since", msg: "before 1970",
			input: map[string]any{"service_id": "s", "since": "500000h"}, cli: []string{"service", "logs", "s", "--since", "500000h"}},
		{op: "service_events", field: "after", msg: `field "after" must be an integer of 0 or more, not -1`,
			input: map[string]any{"service_id": "s", "after": -1}, cli: []string{"service", "events", "s", "--after", "-1"}},
		{op: "service_create", field: "args", msg: "element 0 is null",
			input: map[string]any{"model_id": "m", "engine_type": "vllm", "args": []any{nil}}},
	}
	for _, tc := range cases {
		t.Run(tc.op+"/"+tc.field+"/"+fmt.Sprint(tc.input[tc.field]), func(t *testing.T) {
			op, _ := tools.Lookup(tc.op)
			raw, _ := json.Marshal(tc.input)
			check := func(front string, code int, wantCode int, kind, field, msg string) {
				t.Helper()
				if code != wantCode || kind != string(errs.InvalidArgument) || field != tc.field || !strings.Contains(msg, tc.msg) {
					t.Errorf("%s: code %d kind %q field %q message %q; want %d invalid_argument on %q saying %q", front, code, kind, field, msg, wantCode, tc.field, tc.msg)
				}
			}
			var body httperr.Body
			posted, err := http.Post(fe.api.URL+"/api/"+op.Group()+"/"+op.Verb(), "application/json", bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			_ = json.NewDecoder(posted.Body).Decode(&body)
			posted.Body.Close()
			check("HTTP POST", posted.StatusCode, 400, string(body.Error.Code), body.Error.Field, body.Error.Message)
			if op.Annotations().ReadOnly {
				q := url.Values{}
				for k, v := range tc.input {
					q.Set(k, fmt.Sprint(v))
				}
				got, err := http.Get(fe.api.URL + "/api/" + op.Group() + "/" + op.Verb() + "?" + q.Encode())
				if err != nil {
					t.Fatal(err)
				}
				body = httperr.Body{}
				_ = json.NewDecoder(got.Body).Decode(&body)
				got.Body.Close()
				check("HTTP GET", got.StatusCode, 400, string(body.Error.Code), body.Error.Field, body.Error.Message)
			}

			rpcErr := rpcCall(t, fe.rpc.URL, op, raw)
			check("JSON-RPC", rpcErr.Code, -32602, rpcErr.Data.Kind, rpcErr.Data.Field, rpcErr.Message)

			var call mcpgo.CallToolRequest
			call.Params.Name = tc.op
			call.Params.Arguments = tc.input
			res, err := fe.mc.CallTool(t.Context(), call)
			if err != nil {
				t.Fatalf("MCP: %v", err)
			}
			if text := toolText(res); !res.IsError || !strings.HasPrefix(text, "invalid_argument: ") || !strings.Contains(text, tc.msg) {
				t.Errorf("MCP: %+v; want an invalid_argument error result saying %q", res, tc.msg)
			}

			if tc.cli != nil {
				var stderr bytes.Buffer
				args := append([]string{"aima", "--addr", strings.TrimPrefix(fe.api.URL, "http://")}, tc.cli...)
				code := Run(t.Context(), args, IO{Stdout: io.Discard, Stderr: &stderr, Stdin: strings.NewReader("")})
				if code != 2 || !strings.Contains(stderr.String(), tc.msg) {
					t.Errorf("CLI %v: exit %d, stderr %q; want 2 saying %q", tc.cli, code, stderr.String(), tc.msg)
				}
			}
		})
	}
}

// A flag value that does not parse, or a flag that does not exist, is a
// usage error: exit code 2 on every command, before any daemon is asked.
func TestCLIUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"service", "logs", "s", "--tail", "abc"},
		{"service", "events", "s", "--after", "x"},
		{"service", "logs", "s", "--tial", "3"},
		{"store", "check", "--bogus"},
	} {
		var stderr bytes.Buffer
		code := Run(t.Context(), append([]string{"aima", "--addr", "127.0.0.1:1"}, args...), IO{Stdout: io.Discard, Stderr: &stderr, Stdin: strings.NewReader("")})
		if code != 2 || !strings.Contains(stderr.String(), "error: ") {
			t.Errorf("aima %v: exit %d, stderr %q; want 2 with the error", args, code, stderr.String())
		}
	}
}

// rpcError is a JSON-RPC error object as aima fills it.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    struct {
		Kind  string `json:"kind"`
		Field string `json:"field"`
	} `json:"data"`
}

// rpcCall calls op over JSON-RPC with params and returns the error of the
// response (zero when it has none).
func rpcCall(t *testing.T, url string, op tools.Op, params json.RawMessage) rpcError {
	t.Helper()
	req := `{"jsonrpc":"2.0","id":1,"method":"` + jsonrpc.MethodName(op) + `","params":` + string(params) + `}`
	resp, err := http.Post(url, "application/json", strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rr struct {
		Error rpcError `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&rr)
	return rr.Error
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
