package services

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// Every goroutine the manager starts defers Contain (or, inside a start,
// containPart): a panic there, a bug in aima or in a library it calls on
// hostile input, ends that piece of work only. It is logged with its
// stack, and the service the goroutine worked for is marked failed with
// kind internal and the panic in its reason, so it neither takes the
// daemon down nor stays in a state nothing will move it out of.

// panicReason logs a recovered panic and returns the reason to record.
func (m *Manager) panicReason(what, serviceID string, v any) string {
	m.log.Error("panic recovered: "+what, "service", serviceID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return fmt.Sprintf("internal error while %s: %v (a bug in aima; the daemon log has its stack)", what, v)
}

// Contain recovers a panic of the goroutine that defers it (it must be
// deferred directly) and fails serviceID with it, when not empty. The
// serving layer's goroutines that act on a service (an idle release)
// defer it too.
func (m *Manager) Contain(what, serviceID string) {
	v := recover()
	if v == nil {
		return
	}
	reason := m.panicReason(what, serviceID, v)
	if serviceID != "" {
		m.failInternal(serviceID, reason)
	}
}

// failInternal records an internal failure of a service (after a panic);
// a service already stopped or deleted stays as it is.
func (m *Manager) failInternal(id, reason string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 30*time.Second)
	defer cancel()
	if _, err := m.fail(ctx, id, failure{kind: FailureInternal, reason: reason}, func(x *Service) {
		x.UnhealthySince = nil
	}); err != nil {
		m.log.Warn("record the internal failure", "service", id, "err", err)
	}
}

// guarded runs one part of a start (its phases, or the readiness wait of
// a start resumed after a daemon restart) and turns a panic in it into the
// start's failure: kind internal, the phase and the panic in the reason.
// A container the start created is removed, as for a cancelled start.
func (st *starter) guarded(ctx context.Context, part func(context.Context) *failure) (f *failure) {
	defer func() {
		if v := recover(); v != nil {
			f = &failure{kind: FailureInternal, reason: st.m.panicReason(fmt.Sprintf("starting (phase %s)", st.phase), st.s.ID, v)}
			if st.containerID != "" {
				st.m.discard(ctx, st.containerID)
			}
		}
	}()
	return part(ctx)
}

// containPart recovers a panic in a goroutine a start runs beside its
// readiness wait (log follower, health probe, die watcher) and hands the
// start its failure on crashed (buffered: one slot per such goroutine).
func (st *starter) containPart(what string, crashed chan<- *failure) {
	v := recover()
	if v == nil {
		return
	}
	select {
	case crashed <- &failure{kind: FailureInternal, reason: st.m.panicReason(what, st.s.ID, v)}:
	default:
	}
}
