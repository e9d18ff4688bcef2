package fakeruntime

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"aima/errs"
	"aima/runtime"
)

// Docker actions the fake reports besides the runtime.Action* ones.
const (
	actionKill = "kill"
	actionStop = "stop"
)

// container is one fake container. Its fields are guarded by Runtime.mu,
// except healthy, which the engine's HTTP handler reads.
type container struct {
	state   runtime.ContainerState
	spec    runtime.ContainerSpec
	script  Script
	logs    []runtime.LogLine
	logWake chan struct{} // closed and replaced when a line is added or the process ends
	proc    *process      // the current run; nil before the first start
	// removing is set while a removal is in progress (state removing).
	removing bool
	healthy  atomic.Bool
}

// process is one run of a container's script.
type process struct {
	done   chan struct{} // closed when the process has exited
	served chan struct{} // closed when the engine first answered 200
	once   sync.Once
	ln     net.Listener // the published port
	srv    *http.Server
}

func (c *container) running() bool { return c.state.Running }

func notFound(id string) error { return errs.NotFoundf("no such container: %s", id) }

// CreateContainer creates a container from spec, which must name a local
// image; it runs the script SetScript chose for its labels when started.
func (r *Runtime) CreateContainer(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if _, err := r.enter(ctx, OpCreate); err != nil {
		return "", r.completeLater(err, func() { _, _ = r.createLocked(spec) })
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.createLocked(spec)
}

func (r *Runtime) createLocked(spec runtime.ContainerSpec) (string, error) {
	if !r.images[spec.Image] {
		return "", errs.NotFoundf("create container %s: no such image: %s", spec.Name, spec.Image)
	}
	for _, c := range r.containers {
		if spec.Name != "" && c.state.Name == spec.Name {
			return "", errs.New(errs.Conflict, "create container %s: the name is already in use by container %s", spec.Name, c.state.ID)
		}
	}
	r.seq++
	id := fmt.Sprintf("%064x", r.seq)
	name := spec.Name
	if name == "" {
		name = "fake_" + strconv.Itoa(r.seq)
	}
	c := &container{
		spec:    spec,
		script:  r.scriptFor(spec.Labels),
		logWake: make(chan struct{}),
		state: runtime.ContainerState{
			ID: id, Name: name, Image: spec.Image, Labels: maps.Clone(spec.Labels),
			Status: runtime.StateCreated, CreatedAt: r.now(),
		},
	}
	r.containers[id] = c
	r.emitLocked(c, runtime.ActionCreate, nil)
	return id, nil
}

// StartContainer publishes the container's port and runs its script. A
// host port someone else holds is errs.Conflict and the container stays as
// it was; starting a running container does nothing.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	if _, err := r.enter(ctx, OpStart); err != nil {
		return r.completeLater(err, func() { _ = r.startLocked(id) })
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.startLocked(id)
}

func (r *Runtime) startLocked(id string) error {
	c, ok := r.containers[id]
	if !ok {
		return notFound(id)
	}
	if c.running() {
		return nil
	}
	if c.removing {
		return errs.New(errs.Conflict, "start container %s: its removal is in progress", id)
	}
	p := &process{done: make(chan struct{}), served: make(chan struct{})}
	if c.spec.ContainerPort > 0 {
		host := c.spec.HostIP
		if host == "" {
			host = "127.0.0.1"
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(c.spec.HostPort)))
		if err != nil {
			return errs.New(errs.Conflict, "start container %s: bind %s:%d: port is already allocated", id, host, c.spec.HostPort)
		}
		p.ln = ln
		c.state.HostPort = ln.Addr().(*net.TCPAddr).Port
		p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if c.healthy.Load() {
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte("{}"))
				p.once.Do(func() { close(p.served) })
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}), ReadHeaderTimeout: 5 * time.Second}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = p.srv.Serve(ln)
		}()
	}
	c.healthy.Store(false)
	c.proc = p
	c.state.Status, c.state.Running = runtime.StateRunning, true
	c.state.ExitCode, c.state.OOMKilled, c.state.StartedAt, c.state.FinishedAt = 0, false, r.now(), time.Time{}
	r.emitLocked(c, runtime.ActionStart, nil)
	r.wg.Add(1)
	go r.run(c, p)
	return nil
}

// run executes the script of one run of c.
func (r *Runtime) run(c *container, p *process) {
	defer r.wg.Done()
	for _, st := range c.script.Steps {
		if st.After > 0 {
			t := time.NewTimer(st.After)
			select {
			case <-t.C:
			case <-p.done:
				t.Stop()
				return
			case <-r.ctx.Done():
				t.Stop()
				return
			}
		}
		for _, ch := range []<-chan struct{}{st.Until, servedIf(st.UntilServed, p)} {
			if ch == nil {
				continue
			}
			select {
			case <-ch:
			case <-p.done:
				return
			case <-r.ctx.Done():
				return
			}
		}
		r.mu.Lock()
		if c.proc != p || !c.running() {
			r.mu.Unlock()
			return
		}
		r.actLocked(c, st)
		r.mu.Unlock()
	}
}

func servedIf(wait bool, p *process) <-chan struct{} {
	if !wait {
		return nil
	}
	return p.served
}

func (r *Runtime) actLocked(c *container, st Step) {
	switch st.Do {
	case ActLog:
		r.logLocked(c, st.Stream, st.Text)
	case ActHealthy:
		c.healthy.Store(true)
	case ActUnhealthy:
		c.healthy.Store(false)
	case ActExit:
		r.exitLocked(c, st.Code, false)
	case ActOOM:
		r.exitLocked(c, 137, true)
	}
}

func (r *Runtime) logLocked(c *container, stream, text string) {
	if stream == "" {
		stream = "stdout"
	}
	c.logs = append(c.logs, runtime.LogLine{Stream: stream, Time: r.now(), Text: text})
	close(c.logWake)
	c.logWake = make(chan struct{})
}

// exitLocked ends the running process of c: the port closes, the output
// ends, and the oom (if any) and die events go out. It does nothing when c
// does not run.
func (r *Runtime) exitLocked(c *container, code int, oom bool) {
	if !c.running() {
		return
	}
	p := c.proc
	c.healthy.Store(false)
	c.state.Status, c.state.Running = runtime.StateExited, false
	c.state.ExitCode, c.state.OOMKilled, c.state.FinishedAt = code, oom, r.now()
	if p.srv != nil {
		_ = p.srv.Close()
	}
	if p.ln != nil {
		// The port is free once the process ended, as Docker's is when
		// the die event goes out: srv.Close does not close a listener
		// its Serve has not begun to track yet (a process that exits
		// before its server goroutine ran), and a start right after
		// would find the port in use.
		_ = p.ln.Close()
	}
	close(p.done)
	close(c.logWake)
	c.logWake = make(chan struct{})
	if oom {
		r.emitLocked(c, runtime.ActionOOM, nil)
	}
	r.emitLocked(c, runtime.ActionDie, map[string]string{"exitCode": strconv.Itoa(code)})
}

// InspectContainer reports the container's full state.
func (r *Runtime) InspectContainer(ctx context.Context, id string) (runtime.ContainerState, error) {
	if _, err := r.enter(ctx, OpInspect); err != nil {
		return runtime.ContainerState{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.ContainerState{}, notFound(id)
	}
	return c.snapshot(), nil
}

func (c *container) snapshot() runtime.ContainerState {
	st := c.state
	st.Labels = maps.Clone(c.state.Labels)
	return st
}

// ListContainers returns the containers carrying opts.Labels as Docker's
// list API does: CreatedAt to the second, no StartedAt, FinishedAt or OOM
// flag, the exit code of exited ones.
func (r *Runtime) ListContainers(ctx context.Context, opts runtime.ListOptions) ([]runtime.ContainerState, error) {
	if _, err := r.enter(ctx, OpList); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []runtime.ContainerState{}
	for _, c := range r.sortedLocked() {
		if !hasLabels(c.state.Labels, opts.Labels) {
			continue
		}
		st := c.snapshot()
		st.CreatedAt = st.CreatedAt.Truncate(time.Second)
		st.StartedAt, st.FinishedAt, st.OOMKilled, st.Error = time.Time{}, time.Time{}, false, ""
		if !c.running() {
			st.HostPort = 0
		}
		out = append(out, st)
	}
	return out, nil
}

// sortedLocked lists containers newest first, as Docker does.
func (r *Runtime) sortedLocked() []*container {
	out := make([]*container, 0, len(r.containers))
	for _, c := range r.containers {
		out = append(out, c)
	}
	// IDs are the creation sequence, zero-padded: newest sorts last.
	slices.SortFunc(out, func(a, b *container) int { return strings.Compare(b.state.ID, a.state.ID) })
	return out
}

// StopContainer sends SIGTERM and waits for the exit; the script decides
// how the process takes it (TermExit, TermDelay, IgnoreTerm). After
// opts.Timeout it is SIGKILLed (137). Stopping a container that does not
// run does nothing.
func (r *Runtime) StopContainer(ctx context.Context, id string, opts runtime.StopOptions) error {
	cut, err := r.enter(ctx, OpStop)
	if err != nil {
		return err
	}
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok {
		r.mu.Unlock()
		return notFound(id)
	}
	if !c.running() {
		r.mu.Unlock()
		return nil
	}
	p, sc := c.proc, c.script
	r.emitLocked(c, actionKill, map[string]string{"signal": "15"})
	if !sc.IgnoreTerm && sc.TermDelay <= 0 {
		r.exitLocked(c, sc.TermExit, false)
		r.emitLocked(c, actionStop, nil)
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	kill := time.NewTimer(max(opts.Timeout, 0))
	defer kill.Stop()
	var term <-chan time.Time
	if !sc.IgnoreTerm && sc.TermDelay < opts.Timeout {
		t := time.NewTimer(sc.TermDelay)
		defer t.Stop()
		term = t.C
	}
	code := sc.TermExit
	select {
	case <-p.done:
	case <-term:
	case <-kill.C:
		code = 137
	case <-ctx.Done():
		return fmt.Errorf("stop container %s: %w", id, ctx.Err())
	case <-cut:
		return errCut()
	case <-r.ctx.Done():
		return errClosed()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.proc == p && c.running() {
		if code == 137 {
			r.emitLocked(c, actionKill, map[string]string{"signal": "9"})
		}
		r.exitLocked(c, code, false)
		r.emitLocked(c, actionStop, nil)
	}
	return nil
}

// RemoveContainer deletes the container; a running one only with
// opts.Force (SIGKILL first). A container whose removal is already in
// progress (a remove hanging on a Completes fault, perhaps abandoned by its
// caller) is waited for: the call returns once it is gone.
func (r *Runtime) RemoveContainer(ctx context.Context, id string, opts runtime.RemoveOptions) error {
	cut, err := r.enterOp(ctx, OpRemove, func() { r.beginRemovalLocked(id, opts.Force) })
	if err != nil {
		return r.completeLater(err, func() { _ = r.removeLocked(id, opts.Force) })
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok && c.removing {
		return r.awaitRemovalLocked(ctx, cut, c)
	}
	return r.removeLocked(id, opts.Force)
}

// beginRemovalLocked marks a container whose removal Docker has begun:
// killed if forced, then in state removing until removeLocked.
func (r *Runtime) beginRemovalLocked(id string, force bool) {
	c, ok := r.containers[id]
	if !ok || (c.running() && !force) {
		return
	}
	if c.running() {
		r.emitLocked(c, actionKill, map[string]string{"signal": "9"})
		r.exitLocked(c, 137, false)
	}
	c.removing = true
	c.state.Status = runtime.StateRemoving
	r.changedLocked()
}

// awaitRemovalLocked waits (releasing r.mu meanwhile) until c is removed.
func (r *Runtime) awaitRemovalLocked(ctx context.Context, cut <-chan struct{}, c *container) error {
	for {
		if r.containers[c.state.ID] != c {
			return nil
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			r.mu.Lock()
			return fmt.Errorf("remove container %s: %w", c.state.ID, ctx.Err())
		case <-cut:
			r.mu.Lock()
			return errCut()
		case <-r.ctx.Done():
			r.mu.Lock()
			return errClosed()
		}
		r.mu.Lock()
	}
}

func (r *Runtime) removeLocked(id string, force bool) error {
	c, ok := r.containers[id]
	if !ok {
		return notFound(id)
	}
	if c.running() {
		if !force {
			return errs.New(errs.Conflict, "remove container %s: it is running: stop it first or force", id)
		}
		r.emitLocked(c, actionKill, map[string]string{"signal": "9"})
		r.exitLocked(c, 137, false)
	}
	delete(r.containers, id)
	close(c.logWake) // followers see the output end
	c.logWake = make(chan struct{})
	r.emitLocked(c, runtime.ActionDestroy, nil)
	return nil
}

// WaitExit delivers the exit once the container does not run: at once
// (code 0) for one never started, as Docker does.
func (r *Runtime) WaitExit(ctx context.Context, id string) <-chan runtime.ExitStatus {
	out := make(chan runtime.ExitStatus, 1)
	cut, err := r.enter(ctx, OpWait)
	if err != nil {
		out <- runtime.ExitStatus{Err: err}
		close(out)
		return out
	}
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok {
		r.mu.Unlock()
		out <- runtime.ExitStatus{Err: notFound(id)}
		close(out)
		return out
	}
	if !c.running() {
		out <- runtime.ExitStatus{ExitCode: c.state.ExitCode}
		r.mu.Unlock()
		close(out)
		return out
	}
	p := c.proc
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(out)
		st := r.stream(ctx, cut, "wait container "+id)
		err := wait(st, p.done)
		if err == nil {
			err = st.ended() // cut before the exit: the answer never comes
		}
		if err != nil {
			out <- runtime.ExitStatus{Err: err}
			return
		}
		r.mu.Lock()
		code := c.state.ExitCode
		r.mu.Unlock()
		out <- runtime.ExitStatus{ExitCode: code}
	}()
	return out
}
