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

// LocalCaller runs operations against the daemon's own Domain.
type LocalCaller struct{ Domain *Domain }

// Call implements Caller.
func (c LocalCaller) Call(ctx context.Context, op Op, raw json.RawMessage, rep Reporter) (any, error) {
	return op.Call(ctx, c.Domain, raw, rep)
}

// ReadOnly reports whether the domain refuses mutating operations.
func (c LocalCaller) ReadOnly() bool { return c.Domain.ReadOnly }
