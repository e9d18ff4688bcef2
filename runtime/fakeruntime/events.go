package fakeruntime

import (
	"context"
	"maps"
	"sync"

	"aima/runtime"
)

// subscription is one Events stream. Events queue here without bound (as
// the Docker engine buffers for a slow reader), so emitting never blocks.
type subscription struct {
	labels map[string]string
	mu     sync.Mutex
	queue  []runtime.Event
	wake   chan struct{} // capacity 1: something was queued
}

func (s *subscription) push(ev runtime.Event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) take() []runtime.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}

// emitLocked records an event of c (with its labels, name and image as
// attributes, plus extra) and queues it to matching subscribers.
func (r *Runtime) emitLocked(c *container, action string, extra map[string]string) {
	attrs := maps.Clone(c.state.Labels)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["name"], attrs["image"] = c.state.Name, c.state.Image
	maps.Copy(attrs, extra)
	ev := runtime.Event{ContainerID: c.state.ID, Action: action, Labels: attrs, Time: r.stampLocked()}
	if action == runtime.ActionDie {
		ev.ExitCode = c.state.ExitCode
	}
	r.events = append(r.events, ev)
	for s := range r.subs {
		if hasLabels(ev.Labels, s.labels) {
			s.push(cloneEvent(ev))
		}
	}
	r.changedLocked()
}

func cloneEvent(ev runtime.Event) runtime.Event {
	ev.Labels = maps.Clone(ev.Labels)
	return ev
}

// Events streams the events of containers carrying opts.Labels: with
// opts.Since, first those recorded since then (inclusive), then new ones.
// The stream ends with ctx (its error), a Cut or Close (errs.Unavailable).
func (r *Runtime) Events(ctx context.Context, opts runtime.EventOptions) (<-chan runtime.Event, <-chan error) {
	out := make(chan runtime.Event)
	errc := make(chan error, 1)
	cut, err := r.enter(ctx, OpEvents)
	if err != nil {
		errc <- err
		close(errc)
		close(out)
		return out, errc
	}
	s := &subscription{labels: maps.Clone(opts.Labels), wake: make(chan struct{}, 1)}
	r.mu.Lock()
	if !opts.Since.IsZero() {
		for _, ev := range r.events {
			if !ev.Time.Before(opts.Since) && hasLabels(ev.Labels, s.labels) {
				s.queue = append(s.queue, cloneEvent(ev))
			}
		}
		if len(s.queue) > 0 {
			s.wake <- struct{}{}
		}
	}
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(out)
		defer close(errc)
		defer func() {
			r.mu.Lock()
			delete(r.subs, s)
			r.mu.Unlock()
		}()
		st := r.stream(ctx, cut, "events")
		for {
			for _, ev := range s.take() {
				if err := send(st, out, ev); err != nil {
					errc <- err
					return
				}
			}
			if err := wait(st, s.wake); err != nil {
				errc <- err
				return
			}
		}
	}()
	return out, errc
}

// Recorded returns every event recorded so far, oldest first (for asserting
// what happened).
func (r *Runtime) Recorded() []runtime.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]runtime.Event, len(r.events))
	for i, ev := range r.events {
		out[i] = cloneEvent(ev)
	}
	return out
}
