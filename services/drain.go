package services

import (
	"context"
	"errors"
	"fmt"
	"time"

	"aima/errs"
	"aima/events"
	"aima/gpu"
)

// Draining a GPU: cordon it, then move every service that holds it. Each
// service stops admitting gateway requests (new ones wait, as for a
// swap), lets those in flight finish (bounded by Grace), stops, and, if it
// was running and another GPU can take it, starts again there; the
// requests that waited are then admitted on the new GPU, so a move loses
// none. What cannot be placed stays stopped with the reason. Every step is
// an event of the service it concerns.

// DrainOptions tune a drain.
type DrainOptions struct {
	// Reason is the cordon's reason.
	Reason string
	// Grace bounds how long requests in flight may take before the
	// service is stopped anyway (default one minute).
	Grace time.Duration
	// StartTimeout is the deadline of each start on another GPU (default
	// the daemon's start_timeout).
	StartTimeout time.Duration
	// OnEvent, when set, sees every event of the services being moved, in
	// order, as the drain goes (a CLI's progress).
	OnEvent func(events.Event)
}

// DrainOutcome is what a drain did with one service.
type DrainOutcome string

// The outcomes.
const (
	// DrainMoved: stopped, then running again on another GPU.
	DrainMoved DrainOutcome = "moved"
	// DrainStopped: stopped, and left stopped (it was not running, or no
	// other GPU can take it; the reason says which).
	DrainStopped DrainOutcome = "stopped"
	// DrainFailed: its start on another GPU failed (the reason is the
	// start's).
	DrainFailed DrainOutcome = "failed"
)

// DrainMove is one service a drain moved off the GPU.
type DrainMove struct {
	ServiceID string       `json:"service_id"`
	Name      string       `json:"name,omitempty"`
	Was       Status       `json:"was" jsonschema:"its status when the drain reached it"`
	Outcome   DrainOutcome `json:"outcome" jsonschema:"moved (running on another GPU), stopped (left stopped: see reason) or failed (its start elsewhere failed)"`
	To        string       `json:"to,omitempty" jsonschema:"indexes of the GPUs it runs on now, when moved"`
	Node      string       `json:"node,omitempty" jsonschema:"on a cluster: the node it runs on now, when moved"`
	Reason    string       `json:"reason,omitempty" jsonschema:"why it was left stopped or failed"`
}

// DrainResult is a finished drain.
type DrainResult struct {
	Node    string       `json:"node,omitempty" jsonschema:"on a cluster: the node drained, when a node's name was given"`
	Cordons []gpu.Cordon `json:"cordons" jsonschema:"the cordon of each GPU drained (they stay cordoned: uncordon them to use them again)"`
	Moves   []DrainMove  `json:"moves" jsonschema:"every service that held one of those GPUs, in the order they were moved"`
}

// defaultDrainGrace bounds the requests in flight of a drained service.
const defaultDrainGrace = time.Minute

// Drain cordons the GPU (index or UUID; on a cluster node/index, or a
// node's name for each of its GPUs) and moves every service off it: on a
// cluster each is started again on another node that fits.
// A caller that goes away does not cut a move in half (a service stopped
// and never started again): the drain runs to its end, each step bounded
// by the grace, the stop timeout and the start's deadline; only the
// daemon's shutdown ends it early.
func (m *Manager) Drain(ctx context.Context, id string, opts DrainOptions) (DrainResult, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	if opts.Grace <= 0 {
		opts.Grace = defaultDrainGrace
	}
	if opts.OnEvent == nil {
		opts.OnEvent = func(events.Event) {}
	}
	c, err := m.Cordon(ctx, id, opts.Reason)
	if err != nil {
		return DrainResult{}, err
	}
	res := DrainResult{Node: c.Node, Cordons: c.Cordons, Moves: []DrainMove{}}
	for _, s := range m.holdersOf(ctx, c.GPUs) {
		mv, err := m.drainOne(ctx, s.ID, c, opts)
		if err != nil {
			return res, err
		}
		res.Moves = append(res.Moves, mv)
	}
	return res, nil
}

// drainOne moves one service off the cordoned GPUs.
func (m *Manager) drainOne(ctx context.Context, id string, c CordonResult, opts DrainOptions) (DrainMove, error) {
	sub := m.bus.Subscribe(id, m.bus.LastSeq(id))
	flush := func() { // hand the events published so far to OnEvent
		for sub.Cursor() < m.bus.LastSeq(id) {
			ev, err := sub.Next(ctx)
			if err != nil {
				return
			}
			opts.OnEvent(ev)
		}
	}
	defer flush()
	s, err := m.col.Get(ctx, id)
	if err != nil {
		return DrainMove{}, err
	}
	mv := DrainMove{ServiceID: s.ID, Name: s.Name, Was: s.Status}
	say := func(msg string) {
		m.bus.Publish(events.Event{ServiceID: id, Run: s.Run, Type: events.TypeMessage, Status: string(s.Status), Message: msg})
		flush()
	}
	what := c.Text()
	gpuText := what + " is being drained"
	if r := c.Cordons[0].Reason; r != "" {
		gpuText += " (" + r + ")"
	}
	wasUp := s.Status.HoldsGPUs()
	// New requests wait (for the move, when it was up: they do not start
	// it); those in flight get the grace, then it is stopped anyway.
	gctx, cancel := context.WithTimeout(ctx, opts.Grace)
	resume, left := m.serving.Quiesce(gctx, id, QuiesceOptions{Moving: wasUp, InFlight: func(n int) {
		say(fmt.Sprintf("%s: letting %d request(s) in flight finish (up to %s), then stopping this service", gpuText, n, opts.Grace))
	}})
	cancel()
	defer resume()
	if left > 0 && ctx.Err() == nil {
		say(fmt.Sprintf("%d request(s) still in flight after %s: stopping anyway", left, opts.Grace))
	}
	// Where would it go? Decided before the stop, so the stop's reason
	// can say it stays stopped and why.
	elsewhere, why := "", ""
	if wasUp {
		elsewhere, why = m.dryPlace(ctx, s)
	}
	reason := what + " drained"
	switch {
	case !wasUp && s.OnDemand:
		reason += fmt.Sprintf(" while it was %s; its next request starts it on another GPU", s.Status)
	case !wasUp:
		reason += fmt.Sprintf(" while it was %s", s.Status)
	case why != "":
		reason += "; no other GPU can take it: " + why
	default:
		say(fmt.Sprintf("%s: stopping this service to start it again on %s", gpuText, elsewhere))
	}
	if _, err := m.StopFor(ctx, id, reason); err != nil {
		return mv, err
	}
	flush() // the stop's own events, so the start's end is the next status seen
	if !wasUp || why != "" {
		mv.Outcome, mv.Reason = DrainStopped, reason
		return mv, nil
	}
	res, err := m.StartWith(ctx, id, StartOptions{Timeout: opts.StartTimeout})
	if err != nil {
		mv.Outcome, mv.Reason = DrainFailed, err.Error()
		return mv, nil
	}
	s, err = m.awaitStartEnd(ctx, res.Service, sub, opts.OnEvent)
	if err != nil {
		return mv, err
	}
	if s.Status != StatusRunning {
		mv.Outcome, mv.Reason = DrainFailed, s.Reason
		return mv, nil
	}
	mv.Outcome = DrainMoved
	to := "its GPUs"
	if s.GPULease != nil {
		mv.To, mv.Node, to = s.GPULease.Indexes(), s.GPULease.Node, s.GPULease.Text()
	}
	say(fmt.Sprintf("moved off drained %s: running on %s", what, to))
	return mv, nil
}

// dryPlace says where the service would be placed now, or why it cannot be
// (the cordon already excludes the drained GPU).
func (m *Manager) dryPlace(ctx context.Context, s Service) (where, why string) {
	req, snap, note, err := m.placementRequest(ctx, s, false, true)
	if err == nil && note != "" {
		return "the GPUs it asks for (" + s.GPUs + "; no inventory to check)", ""
	}
	if err == nil {
		var d gpu.Decision
		if d, err = m.place(ctx, snap, req, ""); err == nil {
			return d.Lease.Text(), ""
		}
		if victims, _ := m.chooseVictims(ctx, s, snap, req); len(victims) > 0 {
			return "a GPU that idle evictable services give up", "" // the start evicts them
		}
	}
	var r *gpu.Refusal
	if errors.As(err, &r) {
		return "", r.Error()
	}
	return "", err.Error()
}

// awaitStartEnd forwards the start's events until it ends and returns the
// record.
func (m *Manager) awaitStartEnd(ctx context.Context, s Service, sub *events.Subscription, onEvent func(events.Event)) (Service, error) {
	for {
		idle, cancel := context.WithTimeout(ctx, time.Second)
		ev, err := sub.Next(idle)
		cancel()
		if err == nil {
			onEvent(ev)
			if ev.Type == events.TypeDeleted {
				return s, ErrDeleted(s.ID)
			}
			if ev.Type == events.TypeStatus && !inStart(Status(ev.Status)) {
				return m.col.Get(ctx, s.ID)
			}
			continue
		}
		if ctx.Err() != nil {
			return s, errs.Wrap(errs.Canceled, ctx.Err(), "drain of service %s", s.ID)
		}
		// Quiet for a second: make sure the start has not ended unseen.
		cur, err := m.col.Get(ctx, s.ID)
		if err != nil {
			return cur, err
		}
		if !inStart(cur.Status) && sub.Cursor() >= m.bus.LastSeq(s.ID) {
			return cur, nil
		}
	}
}

// inStart reports a status a start has not ended in yet.
func inStart(st Status) bool { return st == StatusCreating || st == StatusStopping }
