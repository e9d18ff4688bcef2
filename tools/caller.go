package tools

import (
	"context"
	"encoding/json"
)

// Caller runs an operation. Inside the daemon it is LocalCaller; the stdio
// front-ends (`aima mcp`, `aima rpc`) use the daemon's HTTP API through
// client.Caller, so there is still one daemon owning every start.
type Caller interface {
	Call(ctx context.Context, op Op, raw json.RawMessage, rep Reporter) (any, error)
}

// LocalCaller runs operations against the daemon's own Env.
type LocalCaller struct{ Env *Env }

// Call implements Caller.
func (c LocalCaller) Call(ctx context.Context, op Op, raw json.RawMessage, rep Reporter) (any, error) {
	return op.Call(ctx, c.Env, raw, rep)
}

// ReadOnly reports whether the env refuses mutating operations.
func (c LocalCaller) ReadOnly() bool { return c.Env.ReadOnly }
