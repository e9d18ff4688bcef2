package client

import (
	"context"
	"encoding/json"

	"aima/events"
	"aima/tools"
)

// Caller runs operations on a remote daemon; it implements tools.Caller for
// the stdio front-ends. Outputs come back as json.RawMessage.
type Caller struct{ Client *Client }

// Call implements tools.Caller, streaming progress and log lines to rep.
func (c Caller) Call(ctx context.Context, op tools.Op, raw json.RawMessage, rep tools.Reporter) (any, error) {
	if rep == nil {
		rep = tools.NopReporter{}
	}
	stream := &Stream{
		OnEvent: func(ev events.Event) { rep.Event(ev) },
		OnLog:   func(l tools.LogLine) { rep.Log(l) },
		OnDelta: func(d tools.ChatDelta) { rep.Delta(d) },
	}
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	return c.Client.Call(ctx, op.Name(), raw, stream)
}
