package mcp

import (
	"bytes"
	"encoding/json"
	"reflect"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"aima/errs"
)

// renderer is what successResult needs of an operation.
type renderer interface {
	Name() string
	Text(out any) string
	NewOutput() any
}

// successResult returns out as structuredContent plus the operation's short
// text summary. out is the typed output (LocalCaller) or the daemon's raw
// JSON (client.Caller), which is decoded twice: into a map for
// structuredContent, and into the typed output for the text.
func successResult(op renderer, out any) *mcpgo.CallToolResult {
	raw, ok := out.(json.RawMessage)
	if !ok {
		// Encoded here, not by the transport, so an output that cannot
		// be encoded (a NaN, an infinity) is a typed internal error
		// rather than a reply the transport fails to write.
		b, err := json.Marshal(out)
		if err != nil {
			return errorResult(errs.Wrap(errs.Internal, err, "encoding the result of %s", op.Name()))
		}
		return mcpgo.NewToolResultStructured(json.RawMessage(b), op.Text(out))
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep large integers exact
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return errorResult(errs.New(errs.Internal, "%s returned output that is not a JSON object", op.Name()))
	}
	text := string(raw)
	p := op.NewOutput()
	if err := json.Unmarshal(raw, p); err == nil {
		if v := reflect.ValueOf(p); v.Kind() == reflect.Pointer && !v.IsNil() {
			text = op.Text(v.Elem().Interface())
		}
	}
	return mcpgo.NewToolResultStructured(obj, text)
}

// errorDetail is the _meta["aima/error"] of a failed call: the same fields
// as the HTTP API's error body.
type errorDetail struct {
	Code    errs.Kind `json:"code"`
	Message string    `json:"message"`
	Field   string    `json:"field,omitempty"`
}

// errorResult turns a failure into an isError result whose text is
// "<kind>: <message>", the message every front-end shows for it.
func errorResult(err error) *mcpgo.CallToolResult {
	d := errorDetail{Code: errs.KindOf(err), Message: err.Error(), Field: errs.FieldOf(err)}
	res := mcpgo.NewToolResultError(string(d.Code) + ": " + d.Message)
	res.Meta = &mcpgo.Meta{AdditionalFields: map[string]any{MetaError: d}}
	return res
}
