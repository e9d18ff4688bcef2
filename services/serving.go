package services

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"aima/internal/contained"
)

// The lifecycle's side of its seam with the serving layer (package
// serving: admission, traffic figures, idle release, swap groups). The
// lifecycle never imports that layer. It tells it every committed status
// change through the one transition hook (OnTransition), and it asks it
// the few request facts a lifecycle operation depends on through Serving,
// which the serving layer implements and attaches once (Attach). See
// docs/decisions.md ("Serving's own home").

// Traffic is a service's inference figures since the daemon started: what
// `service status` shows and the idle release and swaps go by. The serving
// layer keeps them, in memory only; Get and List fill the record's Traffic
// from it (Serving.Figures), and the persisted record never carries them.
// The type lives here because Service, the one view every front-end
// encodes, has the field.
type Traffic struct {
	Requests      int64      `json:"requests" jsonschema:"inference requests admitted"`
	InFlight      int        `json:"in_flight" jsonschema:"requests being answered now (an open stream counts until it ends)"`
	Waiting       int        `json:"waiting" jsonschema:"requests waiting for the service to start, wake or be swapped in"`
	Failed        int64      `json:"failed" jsonschema:"requests that ended with an error (the engine's or the client's disconnect)"`
	TokensIn      int64      `json:"tokens_in" jsonschema:"prompt tokens, as the engine counted them"`
	TokensOut     int64      `json:"tokens_out" jsonschema:"generated tokens"`
	LastTTFTMs    float64    `json:"last_ttft_ms,omitempty" jsonschema:"time to first token of the last request, in milliseconds (from the request's arrival, including any start or wake)"`
	AvgTTFTMs     float64    `json:"avg_ttft_ms,omitempty" jsonschema:"mean time to first token, in milliseconds"`
	LastRequestAt *time.Time `json:"last_request_at,omitempty" jsonschema:"when the last request ended"`
}

// Serving is what the lifecycle asks of the serving layer: the request
// facts and holds that a lifecycle operation cannot do without.
type Serving interface {
	// Figures returns a copy of the service's figures, or nil before its
	// first request: Get and List show them on the record.
	Figures(id string) *Traffic
	// Idle reports whether the service has nothing in flight, waiting or
	// held, and when it last finished a request or became ready (zero:
	// not since the daemon started). An eviction looks only at idle
	// services, least recently used first.
	Idle(id string) (lastUsed time.Time, idle bool)
	// ClaimIdle holds the service's requests off (see Quiesce) only if it
	// is idle, deciding that atomically with admission, so an eviction
	// never takes a busy service. release admits again.
	ClaimIdle(id string) (release func(), ok bool)
	// Quiesce stops admitting requests to the service (new ones wait,
	// and moving tells them it moves to other GPUs, so they wait for that
	// rather than start it) and waits until none is in flight or ctx
	// ends. left is how many were still in flight then (0: none). The
	// hold lasts until resume is called, also when left > 0: a sleep gives
	// up and resumes, a GPU drain stops the service anyway.
	Quiesce(ctx context.Context, id string, opts QuiesceOptions) (resume func(), left int)
	// SwapIn makes room in s's swap group for s (the active member
	// finishes its requests, then sleeps or stops) and returns with the
	// group locked: the caller starts or wakes s, then calls done, so the
	// swaps of one group never interleave. Start and Wake call it for a
	// member of a swap group.
	SwapIn(ctx context.Context, s Service) (done func(), err error)
}

// QuiesceOptions tune Quiesce.
type QuiesceOptions struct {
	// Moving tells the requests that wait meanwhile that a GPU drain moves
	// the service: they wait for it to run again instead of starting it.
	Moving bool
	// InFlight, when set, is told how many requests are in flight when the
	// wait for them begins (not called when none is). It is called with
	// no lock held.
	InFlight func(n int)
}

// noServing is the serving layer of a manager that has none attached
// (the lifecycle's unit tests): no service ever has a request, so every
// hold is granted at once and a swap group makes no room.
type noServing struct{}

func (noServing) Figures(string) *Traffic         { return nil }
func (noServing) Idle(string) (time.Time, bool)   { return time.Time{}, true }
func (noServing) ClaimIdle(string) (func(), bool) { return func() {}, true }
func (noServing) SwapIn(context.Context, Service) (func(), error) {
	return func() {}, nil
}
func (noServing) Quiesce(context.Context, string, QuiesceOptions) (func(), int) {
	return func() {}, 0
}

// Attach makes s the manager's serving layer. Call it once, before the
// manager serves anything (the daemon does, through serving.New).
func (m *Manager) Attach(s Serving) {
	m.serving = s
}

// Transition is one committed change of a service, as the transition hook
// is told it.
type Transition struct {
	// From is the status before the change.
	From Status
	// Service is the record as stored after it (for a delete, only the ID
	// and the last run).
	Service Service
	// Deleted says the service, its record and its history are gone.
	Deleted bool
}

// transitionHooks are the functions OnTransition registered.
type transitionHooks struct {
	mu  sync.Mutex
	fns atomic.Pointer[[]func(Transition)]
}

// OnTransition registers fn, the transition hook: it is told every
// committed status change (and every delete), in order per service, after
// the record is stored and before the status event is published. It is
// called synchronously, so what it keeps (the serving layer's cache of
// ready records, its idle clocks) is true by the time the operation that
// made the change returns; an event bus subscriber would learn of the
// change later, and admit a request to a service that just went to sleep.
// The caller may hold the service's lifecycle lock (released by a defer),
// so fn must not block nor call back into the lifecycle; a panic in it is
// recovered and logged. Register before the manager serves anything.
func (m *Manager) OnTransition(fn func(Transition)) {
	m.onTransition.mu.Lock()
	defer m.onTransition.mu.Unlock()
	var fns []func(Transition)
	if cur := m.onTransition.fns.Load(); cur != nil {
		fns = append(fns, *cur...)
	}
	fns = append(fns, fn)
	m.onTransition.fns.Store(&fns)
}

// transitioned tells the transition hooks of a change.
func (m *Manager) transitioned(t Transition) {
	fns := m.onTransition.fns.Load()
	if fns == nil {
		return
	}
	for _, fn := range *fns {
		contained.Run(m.log, "the transition hook", func() { fn(t) })
	}
}
