// Package jsonrpc serves aima's operations as JSON-RPC 2.0 methods, over
// stdio (newline-delimited JSON, `aima rpc`) and over HTTP (`POST /rpc` on
// the daemon). It is a front-end like httpapi and the MCP server: every
// method is a tools.Op run through a tools.Caller; this package only speaks
// the protocol.
//
// It is project-owned rather than built on sourcegraph/jsonrpc2 because that
// library cannot do batches, closes the connection on a malformed line, drops
// in-flight replies at EOF and has no HTTP mode (docs/decisions/jsonrpc.md).
//
// Protocol summary:
//   - Methods are the dotted names of the visible operations: "service.start",
//     "model.list", "health.check". Read-only mode hides mutating ones.
//   - Params are the operation's input, by name only (a JSON object); absent
//     or null params mean {}. The result is the operation's output.
//   - Errors use the fixed codes of errors.go; data.kind is the errs kind and
//     data.field names the offending input field when there is one.
//   - While a call runs, its progress events arrive as "service.progress"
//     notifications, its log lines as "service.log" and the pieces of a
//     chat's answer as "inference.delta", all carrying the request id. Notifications from the client (requests without an id) are
//     executed but never answered and report no progress.
//   - Batches hold at most Options.MaxBatch requests (100 by default; a
//     larger one is answered with one -32600 error). Their calls run
//     concurrently, at most Options.BatchConcurrency (8) at a time, started
//     in request order; their responses come back as one array in request
//     order, without entries for notifications. On stdio, the calls of every
//     message of a connection together stay within Options.MaxInFlight.
package jsonrpc

import (
	"bytes"
	"encoding/json"
)

// Version is the only protocol version accepted in the "jsonrpc" member.
const Version = "2.0"

// Notification methods the server sends while a call runs.
const (
	MethodProgress = "service.progress"
	MethodLog      = "service.log"
	MethodDelta    = "inference.delta"
)

// Defaults of Options; a zero field means the default.
const (
	// DefaultMaxLineBytes caps one stdio line. Real requests are small
	// (operation inputs are capped at 1 MiB); the cap stops a runaway
	// producer from exhausting memory.
	DefaultMaxLineBytes = 4 << 20
	// DefaultMaxBodyBytes caps an HTTP request body, like the HTTP API.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxInFlight bounds concurrent calls on one stdio connection,
	// batch elements included; when reached, reading pauses (back-pressure)
	// until one finishes.
	DefaultMaxInFlight = 64
	// DefaultMaxBatch is the largest batch served; a larger one is one
	// -32600 error. Each call of a batch may hold a Docker API call or a
	// connection to the daemon (aima rpc relays every call), so a batch is
	// a bounded unit of work, not a way around the limits.
	DefaultMaxBatch = 100
	// DefaultBatchConcurrency bounds the calls of one batch running at once.
	DefaultBatchConcurrency = 8
)

// Options configure a transport. The zero value serves every operation with
// the default limits.
type Options struct {
	// ReadOnly hides every operation that is not read-only, as the daemon's
	// --read-only does for the HTTP API.
	ReadOnly bool
	// MaxLineBytes caps a stdio line; a longer line is discarded up to its
	// newline and answered with -32600, and the connection stays usable.
	MaxLineBytes int
	// MaxBodyBytes caps an HTTP body; a larger one gets HTTP 413 with a
	// -32600 error body.
	MaxBodyBytes int64
	// MaxInFlight bounds concurrent calls on one stdio connection.
	MaxInFlight int
	// MaxBatch is the largest batch served.
	MaxBatch int
	// BatchConcurrency bounds the calls of one batch running at once.
	BatchConcurrency int
}

func (o Options) maxLine() int     { return orDefault(o.MaxLineBytes, DefaultMaxLineBytes) }
func (o Options) maxBody() int64   { return orDefault(o.MaxBodyBytes, DefaultMaxBodyBytes) }
func (o Options) maxInFlight() int { return orDefault(o.MaxInFlight, DefaultMaxInFlight) }
func (o Options) maxBatch() int    { return orDefault(o.MaxBatch, DefaultMaxBatch) }
func (o Options) batchConcurrency() int {
	return orDefault(o.BatchConcurrency, DefaultBatchConcurrency)
}

// orDefault is v when set (positive), else def.
func orDefault[T int | int64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Response is one JSON-RPC response object: exactly one of Result and
// Error is set. Exported so that clients and tests decode the same shape.
type Response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// Notification is a server-to-client notification (service.progress,
// service.log).
type Notification struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

var null = json.RawMessage("null")

// marshal encodes v as one line of compact JSON without HTML escaping, so
// messages read the same as in the HTTP API. Every value this package
// encodes is marshalable except an operation's output, whose failure the
// caller handles.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// mustMarshal encodes values built from known-good parts (ids and results
// already validated as JSON, strings, numbers).
func mustMarshal(v any) []byte {
	b, err := marshal(v)
	if err != nil {
		panic("jsonrpc: encoding a protocol message: " + err.Error())
	}
	return b
}
