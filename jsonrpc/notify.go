package jsonrpc

import (
	"encoding/json"
	"sync"

	"aima/events"
	"aima/tools"
)

// reporter turns an operation's progress into notifications tagged with the
// request id. After close, late reports are dropped, so nothing is written
// after the response (or after an HTTP handler returned).
type reporter struct {
	id     json.RawMessage
	emit   func([]byte)
	mu     sync.Mutex
	closed bool
}

// ProgressParams are the params of a service.progress notification.
type ProgressParams struct {
	ID    json.RawMessage `json:"id"`
	Event events.Event    `json:"event"`
}

// LogParams are the params of a service.log notification.
type LogParams struct {
	ID   json.RawMessage `json:"id"`
	Line tools.LogLine   `json:"line"`
}

func (r *reporter) Event(ev events.Event) {
	r.send(MethodProgress, ProgressParams{ID: idOrNull(r.id), Event: ev})
}

func (r *reporter) Log(l tools.LogLine) {
	r.send(MethodLog, LogParams{ID: idOrNull(r.id), Line: tools.LogLine{Stream: l.Stream, Time: l.Time, Text: l.Text}})
}

// DeltaParams are the params of an inference.delta notification.
type DeltaParams struct {
	ID    json.RawMessage `json:"id"`
	Delta tools.ChatDelta `json:"delta"`
}

func (r *reporter) Delta(d tools.ChatDelta) {
	r.send(MethodDelta, DeltaParams{ID: idOrNull(r.id), Delta: d})
}

func (r *reporter) send(method string, params any) {
	if r.emit == nil {
		return
	}
	b := mustMarshal(Notification{JSONRPC: Version, Method: method, Params: params})
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.emit(b)
	}
}

func (r *reporter) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}
