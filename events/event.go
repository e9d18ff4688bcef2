// Package events is aima's one in-process event bus. The service runtime
// publishes typed events (phases, status changes, pull bytes, messages); the
// CLI's --wait, `events --follow`, the MCP and JSON-RPC front-ends and the
// HTTP event streams subscribe to it: per service (Subscribe, with replay)
// or to every service at once (Follow, live only: the web dashboard). It imports only the standard library.
//
// Concurrency: Publish never blocks on subscribers. Each service has an
// ordered log; a subscriber is a cursor into that log, so a slow subscriber
// only falls behind (and catches up from the persisted journal if the
// in-memory log was trimmed past it) and never stalls the producer.
package events

import "time"

// Type says what an event reports.
type Type string

// The event types.
const (
	TypeStatus   Type = "status"   // the service's status changed
	TypePhase    Type = "phase"    // a start entered a new phase
	TypeProgress Type = "progress" // byte progress inside a phase (image pull)
	TypeMessage  Type = "message"  // a human-readable step inside a phase (engine log milestones, warnings)
	TypeRequest  Type = "request"  // an inference request through the gateway ended
	// TypeCreated: the service's record was created (status created); its
	// first event.
	TypeCreated Type = "created"
	// TypeDeleted: the service and its history were deleted; its last
	// event, never journaled (there is no history left).
	TypeDeleted Type = "deleted"
)

// Event is one thing that happened to a service. Seq orders the events of one
// service and is unique per service, also across daemon restarts.
type Event struct {
	Seq       uint64 `json:"seq"`
	ServiceID string `json:"service_id"`
	Run       int    `json:"run,omitempty"` // the start attempt this event belongs to
	Type      Type   `json:"type"`
	Status    string `json:"status,omitempty"`
	Phase     string `json:"phase,omitempty"`
	// Failure is the failure kind of a status event to failed (the
	// service record's failure field), so subscribers need not parse it
	// from the message.
	Failure string    `json:"failure,omitempty"`
	Message string    `json:"message,omitempty"`
	Layer   string    `json:"layer,omitempty"`
	Current int64     `json:"current,omitempty"`
	Total   int64     `json:"total,omitempty"`
	Time    time.Time `json:"time"`
	// Request is set on TypeRequest events.
	Request *Request `json:"request,omitempty"`
}

// Request is the record of one inference request through the gateway.
type Request struct {
	Endpoint   string  `json:"endpoint"` // e.g. /v1/chat/completions
	Model      string  `json:"model"`    // as the client asked for it
	Code       int     `json:"code"`     // HTTP status the client got
	Stream     bool    `json:"stream,omitempty"`
	TokensIn   int     `json:"tokens_in"`
	TokensOut  int     `json:"tokens_out"`
	TTFTMs     float64 `json:"ttft_ms,omitempty"` // from arrival to the first token, start or wake included
	DurationMs float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`
	// Note says what the gateway did not take from the engine's answer
	// and why (usage counts that cannot be token counts).
	Note string `json:"note,omitempty"`
}

// Persistent reports whether the event belongs in the durable history. Byte
// counters and per-request records are too frequent and only matter live;
// a deletion leaves no history to belong to.
func (e Event) Persistent() bool {
	return e.Type != TypeProgress && e.Type != TypeRequest && e.Type != TypeDeleted
}

// Journal persists the durable part of each service's history so that a
// subscriber that connects later (even after a daemon restart) still sees
// every phase from the beginning.
type Journal interface {
	// Load returns the persisted events of a service in Seq order.
	Load(serviceID string) ([]Event, error)
	// Append persists one event, possibly later (StoreJournal queues
	// it for its next commit): Load must see every event appended before
	// it was called.
	Append(ev Event) error
}
