package fakeruntime

import (
	"context"
	"maps"

	"aima/errs"
	"aima/runtime"
)

// Outside actions: what the process itself or a person with the docker CLI
// does to a container, behind the API client's back. They work during a Cut
// and ignore faults. Each returns errs.NotFound for an unknown container.

// Exit makes the running process exit with code (a crash, or a clean
// end).
func (r *Runtime) Exit(id string, code int) error {
	return r.outside(id, func(c *container) { r.exitLocked(c, code, false) })
}

// Kill is `docker kill`: SIGKILL, exit 137.
func (r *Runtime) Kill(id string) error {
	return r.outside(id, func(c *container) {
		if c.running() {
			r.emitLocked(c, actionKill, map[string]string{"signal": "9"})
			r.exitLocked(c, 137, false)
		}
	})
}

// OOMKill has the kernel kill the process for memory: an oom event, then
// exit 137 with OOMKilled set.
func (r *Runtime) OOMKill(id string) error {
	return r.outside(id, func(c *container) { r.exitLocked(c, 137, true) })
}

// Log prints a line from the process (stream "stdout" or "stderr").
func (r *Runtime) Log(id, stream, text string) error {
	return r.outside(id, func(c *container) { r.logLocked(c, stream, text) })
}

// SetHealthy makes the engine answer 200 (true) or 503 (false).
func (r *Runtime) SetHealthy(id string, healthy bool) error {
	return r.outside(id, func(c *container) { c.healthy.Store(healthy) })
}

// RemoveOutside is `docker rm -f` by someone else.
func (r *Runtime) RemoveOutside(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removeLocked(id, true)
}

func (r *Runtime) outside(id string, f func(c *container)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return notFound(id)
	}
	f(c)
	r.changedLocked()
	return nil
}

// Containers returns the full state of every container carrying labels,
// newest first, whatever the API's faults.
func (r *Runtime) Containers(labels map[string]string) []runtime.ContainerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.ContainerState
	for _, c := range r.sortedLocked() {
		if hasLabels(c.state.Labels, labels) {
			out = append(out, c.snapshot())
		}
	}
	return out
}

// Spec returns the spec a container was created from.
func (r *Runtime) Spec(id string) (runtime.ContainerSpec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.ContainerSpec{}, false
	}
	spec := c.spec
	spec.Labels = maps.Clone(spec.Labels)
	return spec, true
}

// WaitFor blocks until a container carrying labels satisfies cond and
// returns its state, or fails when ctx ends. It wakes on every change
// instead of polling.
func (r *Runtime) WaitFor(ctx context.Context, labels map[string]string, cond func(runtime.ContainerState) bool) (runtime.ContainerState, error) {
	for {
		r.mu.Lock()
		for _, c := range r.sortedLocked() {
			if st := c.snapshot(); hasLabels(st.Labels, labels) && cond(st) {
				r.mu.Unlock()
				return st, nil
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return runtime.ContainerState{}, errs.Wrap(errs.DeadlineExceeded, ctx.Err(), "no container with labels %v matched", labels)
		}
	}
}

// Running is a WaitFor condition: the process runs.
func Running(st runtime.ContainerState) bool { return st.Running }

// Exited is a WaitFor condition: the process ran and ended.
func Exited(st runtime.ContainerState) bool { return st.Status == runtime.StateExited }
