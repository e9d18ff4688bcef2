// Package errs is aima's one error vocabulary. The domain decides the kind of a
// failure (invalid argument, not found, conflict, unavailable, deadline,
// canceled, internal); every front-end (MCP, JSON-RPC, HTTP, CLI) maps that kind
// to its own code at the edge, so the same failure reads the same everywhere.
package errs

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies a failure. The string values are part of the public API: they
// appear as `kind` in HTTP and JSON-RPC error bodies.
type Kind string

// The kinds. Add one only when a front-end must treat it differently.
// Unauthenticated and PermissionDenied come from the HTTP access guard (a
// missing or wrong token; a foreign Host or Origin), never from an operation;
// a client relaying calls to the daemon (aima mcp, aima rpc) passes them on.
// Each kind's comment is its meaning in the error reference
// (docs/reference/errors.md, written by `make docs`).
const (
	InvalidArgument  Kind = "invalid_argument"  // bad input: an unknown field, a wrong type, a value out of range (the error's field names it)
	NotFound         Kind = "not_found"         // an unknown service, model or engine ID or name
	Conflict         Kind = "conflict"          // not possible in the current state (a start that cannot fit the GPUs, a port another service holds, a damaged record)
	Unavailable      Kind = "unavailable"       // Docker, the daemon or an engine cannot serve now, or a start failed; trying again later may work
	DeadlineExceeded Kind = "deadline_exceeded" // a timeout passed
	Canceled         Kind = "canceled"          // the call was canceled (the client went away, the daemon is shutting down)
	Internal         Kind = "internal"          // a bug, or a failure nobody classified yet
	Unauthenticated  Kind = "unauthenticated"   // the daemon wants its token, and the request had none or a wrong one (the access guard)
	PermissionDenied Kind = "permission_denied" // the request's Host or Origin is refused (the access guard)
)

// AllKinds lists every kind, in the order of the reference.
var AllKinds = []Kind{InvalidArgument, NotFound, Conflict, Unavailable, DeadlineExceeded, Canceled, Internal, Unauthenticated, PermissionDenied}

// Error is a failure with a kind. Field names the offending input field for
// InvalidArgument errors so that clients can point at it.
type Error struct {
	Kind  Kind
	Msg   string
	Field string
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Msg == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of the given kind with a formatted message.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap gives err a kind and context; the message reads "msg: err".
func Wrap(kind Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Err: err}
}

// Invalid reports a bad value in the named input field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Kind: InvalidArgument, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ReadOnly is a read-only daemon's refusal of what would change something
// (an operation, or starting, waking or swapping in a service for an
// inference request); what names it. One kind and one wording on every
// front-end.
func ReadOnly(what string) *Error {
	return New(InvalidArgument, "%s is disabled: aima runs in read-only mode", what)
}

// NotFoundf reports an unknown ID or name.
func NotFoundf(format string, args ...any) *Error { return New(NotFound, format, args...) }

// KindOf returns the kind of err: the outermost *Error's kind wins (so a
// layer that re-classifies an error by wrapping it decides), then context
// errors; plain context errors map to DeadlineExceeded and Canceled; anything
// else is Internal (a bug, or an error nobody classified yet).
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Internal
}

// FieldOf returns the input field an InvalidArgument error names, if any.
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
