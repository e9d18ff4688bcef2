package services

import (
	"sync"
	"time"
)

// Traffic is a service's inference figures since the daemon started: what
// `service status` shows and the idle release and swaps go by. They live in
// memory only; the persisted record never carries them.
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

// RequestFigures is what one finished request adds to its service's figures.
type RequestFigures struct {
	TokensIn, TokensOut int
	TTFT                time.Duration // 0: no token was produced
	Failed              bool
}

// servingEntry is the in-memory serving state of one service.
type servingEntry struct {
	Traffic
	ttftSum  time.Duration
	ttftN    int64
	draining bool // a release or swap waits for the requests in flight: admit no new ones
	moving   bool // a drain is moving it to other GPUs: waiters wait for that (holds.go)
	// idle release: the service is released at lastActivity+idle while
	// nothing is in flight or waiting (idle == 0: never).
	idle         time.Duration
	lastActivity time.Time
}

// servingState is the manager's serving state: per-service figures, requests in
// flight and waiting, and one broadcast channel that every change (a
// status transition, a request ending) closes, so waiters re-check.
type servingState struct {
	mu      sync.Mutex
	entries map[string]*servingEntry
	changed chan struct{}
	kick    chan struct{} // wakes the idle loop after a change of deadlines
}

func newServingState() *servingState {
	return &servingState{entries: map[string]*servingEntry{}, changed: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// entryLocked returns the service's entry, creating it.
func (g *servingState) entryLocked(id string) *servingEntry {
	f, ok := g.entries[id]
	if !ok {
		f = &servingEntry{}
		g.entries[id] = f
	}
	return f
}

// notifyLocked wakes everyone waiting for a change.
func (g *servingState) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

func (g *servingState) notify() {
	g.mu.Lock()
	g.notifyLocked()
	g.mu.Unlock()
}

// waitCh returns the channel the next change closes. Take it before
// reading the state it guards, so no change falls between.
func (g *servingState) waitCh() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// figures returns a copy of the service's figures, or nil if it has none.
func (g *servingState) figures(id string) *Traffic {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.entries[id]
	if !ok {
		return nil
	}
	t := f.Traffic
	return &t
}

// waiting returns how many requests wait for the service.
func (g *servingState) waiting(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.entries[id]; ok {
		return f.Waiting
	}
	return 0
}

// forget drops a deleted service's state.
func (g *servingState) forget(id string) {
	g.mu.Lock()
	delete(g.entries, id)
	g.notifyLocked()
	g.mu.Unlock()
}

// arm (re)starts the idle clock of a service that became ready.
func (g *servingState) arm(id string, idle time.Duration, now time.Time) {
	g.mu.Lock()
	f := g.entryLocked(id)
	f.idle, f.lastActivity = idle, now
	g.notifyLocked()
	g.mu.Unlock()
}

// finish records the end of an admitted request.
func (g *servingState) finish(id string, r RequestFigures, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.entryLocked(id)
	f.InFlight--
	f.TokensIn += int64(r.TokensIn)
	f.TokensOut += int64(r.TokensOut)
	if r.Failed {
		f.Failed++
	}
	if r.TTFT > 0 {
		f.ttftSum += r.TTFT
		f.ttftN++
		f.LastTTFTMs = float64(r.TTFT.Microseconds()) / 1000
		f.AvgTTFTMs = float64((f.ttftSum / time.Duration(f.ttftN)).Microseconds()) / 1000
	}
	f.lastActivity = now
	t := now
	f.LastRequestAt = &t
	g.notifyLocked()
}

// idleDue returns the services whose idle time has run out at now, and
// when the next one will (zero: none armed).
func (g *servingState) idleDue(now time.Time) (due []string, next time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, f := range g.entries {
		if f.idle <= 0 || f.InFlight > 0 || f.Waiting > 0 || f.draining {
			continue
		}
		at := f.lastActivity.Add(f.idle)
		if !at.After(now) {
			due = append(due, id)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return due, next
}
