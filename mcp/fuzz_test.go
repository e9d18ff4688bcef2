package mcp

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"aima/events"
	"aima/tools"
)

// decodeCaller decodes arguments strictly, as the daemon does, without
// running anything: it calls each operation against a read-only Env, so a
// mutating operation stops right after decoding. When decoding succeeded it
// returns the output found in ctx as the daemon's raw output, so rendering
// is fuzzed too. A fake is fine here: this exercises argument and output
// handling, not behaviour.
type decodeCaller struct{}

// outputKey carries the fuzzed output through HandleMessage's context.
type outputKey struct{}

func (decodeCaller) Call(ctx context.Context, op tools.Op, raw json.RawMessage, rep tools.Reporter) (any, error) {
	rep.Event(events.Event{Type: events.TypePhase, Phase: "pull", Message: "decoding"})
	_, err := op.Call(ctx, &tools.Domain{ReadOnly: true}, raw, rep)
	if err != nil && strings.Contains(err.Error(), "read-only mode") {
		out, _ := ctx.Value(outputKey{}).([]byte)
		return json.RawMessage(out), nil
	}
	return nil, err
}

// mutatingOps are the operations decodeCaller can call safely.
func mutatingOps() []tools.Op {
	var ops []tools.Op
	for _, op := range tools.Registry() {
		if !op.Annotations().ReadOnly {
			ops = append(ops, op)
		}
	}
	return ops
}

// FuzzToolArguments feeds arbitrary bytes as a tool call's arguments (and
// as the daemon's output) through mcp-go's message handling into the tool
// handler: nothing may panic, and every call whose arguments parse as JSON
// must end in a tool result, successful or isError, never a protocol error.
func FuzzToolArguments(f *testing.F) {
	seeds := []struct {
		op        uint8
		args, out string
	}{
		{0, `{}`, `{}`},
		{1, `{"model_id":"m","engine_type":"vllm"}`, `{"id":"svc-1","status":"created"}`},
		{2, `{"service_id":"svc-1","wait":true,"timeout_seconds":-5}`, `{"service":{"status":"running"}}`},
		{3, `[]`, `{}`},
		{4, `"x"`, `{}`},
		{5, `null`, `{}`},
		{6, `{"model_id":1}`, `[]`},
		{7, `{"unknown":true}`, `not json`},
		{8, `{`, `{}`},
		{9, `{"path":"/tmp","name":null}`, `{"id":"m1","path":"/tmp","size_bytes":12345678901234567890}`},
		{10, `123`, `null`},
	}
	for _, s := range seeds {
		f.Add(s.op, []byte(s.args), []byte(s.out))
	}
	ops := mutatingOps()
	s := NewServer(decodeCaller{}, Options{Version: "fuzz"})
	f.Fuzz(func(t *testing.T, which uint8, args, out []byte) {
		op := ops[int(which)%len(ops)]
		msg := append([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+op.Name()+`","_meta":{"progressToken":"p"},"arguments":`), args...)
		msg = append(msg, "}}"...)
		resp := s.HandleMessage(context.WithValue(t.Context(), outputKey{}, out), msg)
		var parsed any
		argsParse := json.Unmarshal(args, &parsed) == nil
		switch r := resp.(type) {
		case mcpgo.JSONRPCResponse:
			res, ok := r.Result.(*mcpgo.CallToolResult)
			if !ok {
				t.Fatalf("result is %T", r.Result)
			}
			if len(res.Content) == 0 {
				t.Fatal("result without content")
			}
			if !res.IsError && res.StructuredContent == nil {
				t.Fatal("success without structuredContent")
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("response does not marshal: %v", err)
			}
		case mcpgo.JSONRPCError:
			if argsParse {
				t.Fatalf("arguments %q parse as JSON but got protocol error %+v", args, r.Error)
			}
		default:
			t.Fatalf("response %T", resp)
		}
	})
}
