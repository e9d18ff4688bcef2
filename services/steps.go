package services

import (
	"context"

	"aima/runtime"
)

// followSteps publishes, as messages of the start phase, the steps a
// runtime that schedules and pulls by itself reports while it starts the
// container (Kubernetes: "unschedulable: 0/3 nodes are available: 3
// Insufficient nvidia.com/gpu", "pulling: ...", "scheduled: ..."), so a
// start that waits says what for. Docker reports none (and is not asked
// for a subscription per start). The scheduler's last word is kept
// (noNode): a start whose deadline passes while no node fits fails as
// unschedulable with it. The returned func
// stops following and waits for the follower to end.
func (st *starter) followSteps(ctx context.Context, containerID string) (stop func()) {
	if r, ok := st.m.rt.(runtime.StepReporter); !ok || !r.ReportsSteps() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	evs, errc := st.m.rt.Events(ctx, runtime.EventOptions{Labels: map[string]string{runtime.LabelService: st.s.ID}})
	done := make(chan struct{})
	st.m.wg.Add(1)
	go func() {
		defer st.m.wg.Done()
		defer close(done)
		for {
			select {
			case ev, ok := <-evs:
				if !ok {
					return
				}
				if ev.Action == runtime.ActionProgress && ev.ContainerID == containerID && ev.Step != "" {
					st.noNode.waiting(ev.Step, ev.Message)
					st.m.message(st.s.ID, st.s.Run, st.phase, string(ev.Step)+": "+ev.Message)
				}
			case <-errc:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
