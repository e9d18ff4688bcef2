package jsonrpc

import (
	"fmt"

	"aima/errs"
)

// The JSON-RPC error codes. The first five are the specification's; the
// rest are aima's fixed code per errs kind, part of the public API
// (docs/reference/errors.md, written by `make docs` from CodeFor):
//
//	code    kind / meaning
//	-32700  parse error: the line or body is not JSON (id null)
//	-32600  invalid request: not a request object, wrong "jsonrpc", bad id
//	        type, non-string method, empty batch, line or body too large
//	-32601  method not found (the message names the method)
//	-32602  invalid_argument: params not an object, or the operation
//	        rejected its input (data.field names the field)
//	-32603  internal: a bug or an unclassified failure
//	-32004  not_found: unknown service, model or engine
//	-32009  conflict: the request contradicts the current state
//	-32003  unavailable: Docker, the daemon or the engine cannot serve now,
//	        or a start failed
//	-32008  deadline_exceeded: a timeout passed
//	-32800  canceled: the call was canceled (client gone, shutdown)
//	-32001  unauthenticated: the daemon wants its token (aima rpc relaying)
//	-32002  permission_denied: the daemon refused the request's Host/Origin
//
// Every error raised by an operation carries data.kind (the errs kind) and,
// when set, data.field; the message is err.Error(), the same text the HTTP
// API's error.message and the CLI print.
const (
	CodeParseError       = -32700
	CodeInvalidRequest   = -32600
	CodeMethodNotFound   = -32601
	CodeInvalidParams    = -32602
	CodeInternal         = -32603
	CodeNotFound         = -32004
	CodeConflict         = -32009
	CodeUnavailable      = -32003
	CodeDeadlineExceeded = -32008
	CodeCanceled         = -32800
	CodeUnauthenticated  = -32001
	CodePermissionDenied = -32002
)

// CodeFor maps an error kind to its JSON-RPC code. This, httperr.Status
// and cli.ExitCode are the only places kinds become codes; an unknown kind
// (say, from a newer daemon) is internal.
func CodeFor(k errs.Kind) int {
	switch k {
	case errs.InvalidArgument:
		return CodeInvalidParams
	case errs.NotFound:
		return CodeNotFound
	case errs.Conflict:
		return CodeConflict
	case errs.Unavailable:
		return CodeUnavailable
	case errs.DeadlineExceeded:
		return CodeDeadlineExceeded
	case errs.Canceled:
		return CodeCanceled
	case errs.Unauthenticated:
		return CodeUnauthenticated
	case errs.PermissionDenied:
		return CodePermissionDenied
	}
	return CodeInternal
}

// Error is a JSON-RPC error object.
type Error struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    *ErrorData `json:"data,omitempty"`
}

// ErrorData tells clients what kind of failure an operation hit, in the
// vocabulary shared with the HTTP API (error.code there) and the MCP server.
type ErrorData struct {
	Kind  errs.Kind `json:"kind"`
	Field string    `json:"field,omitempty"`
}

// Error lets a client return a JSON-RPC error as a Go error.
func (e *Error) Error() string { return fmt.Sprintf("jsonrpc error %d: %s", e.Code, e.Message) }

// errorFor converts an operation's error to its JSON-RPC error.
func errorFor(err error) *Error {
	kind := errs.KindOf(err)
	return &Error{Code: CodeFor(kind), Message: err.Error(), Data: &ErrorData{Kind: kind, Field: errs.FieldOf(err)}}
}

// protocolError is an error about the message itself (-32700, -32600,
// -32601), which carries no data.
func protocolError(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalidParams is a -32602 raised by the dispatcher before the operation
// runs, shaped like the operation's own input errors.
func invalidParams(field, format string, args ...any) *Error {
	return errorFor(errs.Invalid(field, format, args...))
}
