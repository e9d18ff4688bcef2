package fakeruntime

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"aima/errs"
	"aima/runtime"
)

// Op names one API operation, for Inject and Calls.
type Op string

// The operations of runtime.Runtime.
const (
	OpPing        Op = "ping"
	OpImageExists Op = "image_exists"
	OpPull        Op = "pull"
	OpCreate      Op = "create"
	OpStart       Op = "start"
	OpInspect     Op = "inspect"
	OpList        Op = "list"
	OpStop        Op = "stop"
	OpRemove      Op = "remove"
	OpWait        Op = "wait"
	OpLogs        Op = "logs"
	OpEvents      Op = "events"
)

// Fault makes calls of one operation fail or hang.
type Fault struct {
	// Err is returned by the call (for a stream: on its error channel).
	Err error
	// Hang blocks the call until its context ends, the fault is cleared
	// or the API is cut.
	Hang bool
	// Times is how many calls the fault applies to; 0 means until Clear.
	Times int
}

// Runtime is the fake. Its zero value is not usable; call New.
type Runtime struct {
	now func() time.Time

	mu         sync.Mutex
	seq        int
	containers map[string]*container
	images     map[string]bool
	pulls      map[string]Pull
	scripts    []scripted
	faults     map[Op]*Fault
	faultGen   chan struct{} // closed and replaced when faults change, to release hung calls
	calls      map[Op]int
	cut        chan struct{} // closed while the API is cut
	isCut      bool
	events     []runtime.Event
	subs       map[*subscription]struct{}
	changed    chan struct{} // closed and replaced on every state change (WaitFor)
	lastEvent  time.Time

	ctx    context.Context // ends every goroutine at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ runtime.Runtime = (*Runtime)(nil)

type scripted struct {
	labels map[string]string
	script Script
}

// Option configures New.
type Option func(*Runtime)

// WithClock sets the clock that stamps events, log lines and container
// times (default time.Now). Waits in scripts use the wall clock.
func WithClock(now func() time.Time) Option { return func(r *Runtime) { r.now = now } }

// WithImages makes images present locally from the start.
func WithImages(refs ...string) Option {
	return func(r *Runtime) {
		for _, ref := range refs {
			r.images[ref] = true
		}
	}
}

// New returns an empty fake: no containers, no images but those given, and
// Serve() as the script of every container until SetScript says otherwise.
func New(opts ...Option) *Runtime {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		now: time.Now, containers: map[string]*container{}, images: map[string]bool{}, pulls: map[string]Pull{},
		faults: map[Op]*Fault{}, faultGen: make(chan struct{}), calls: map[Op]int{}, cut: make(chan struct{}),
		subs: map[*subscription]struct{}{}, changed: make(chan struct{}), ctx: ctx, cancel: cancel,
	}
	r.scripts = []scripted{{script: Serve()}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Close kills every process, closes every published port and ends every
// stream, then waits for the fake's goroutines.
func (r *Runtime) Close() {
	r.mu.Lock()
	for _, c := range r.containers {
		if c.running() {
			r.exitLocked(c, 137, false)
		}
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// SetScript makes containers created from now on whose labels include all
// of labels run s (nil labels: every container). The latest matching call
// wins.
func (r *Runtime) SetScript(labels map[string]string, s Script) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scripts = append(r.scripts, scripted{labels: maps.Clone(labels), script: s})
}

func (r *Runtime) scriptFor(labels map[string]string) Script {
	for i := len(r.scripts) - 1; i >= 0; i-- {
		if hasLabels(labels, r.scripts[i].labels) {
			return r.scripts[i].script
		}
	}
	return Script{}
}

// Inject makes calls of op fail or hang (see Fault); it replaces op's
// earlier fault.
func (r *Runtime) Inject(op Op, f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults[op] = &f
	r.faultsChangedLocked()
}

// Clear removes op's fault; calls hanging on it carry on normally.
func (r *Runtime) Clear(op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.faults, op)
	r.faultsChangedLocked()
}

func (r *Runtime) faultsChangedLocked() {
	close(r.faultGen)
	r.faultGen = make(chan struct{})
}

// Cut cuts the API connection: until Restore every call fails with
// errs.Unavailable, and every event, log and wait stream ends with it.
// Containers keep running and their events are still recorded.
func (r *Runtime) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.isCut {
		r.isCut = true
		close(r.cut)
		r.changedLocked()
	}
}

// Restore ends a Cut.
func (r *Runtime) Restore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.isCut {
		r.isCut = false
		r.cut = make(chan struct{})
		r.changedLocked()
	}
}

// Calls returns how many calls of op were made (faulted ones included).
func (r *Runtime) Calls(op Op) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[op]
}

// WaitCalls blocks until at least n calls of op were made (a hanging call
// counts from when it began), or fails when ctx ends.
func (r *Runtime) WaitCalls(ctx context.Context, op Op, n int) error {
	for {
		r.mu.Lock()
		got, changed := r.calls[op], r.changed
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return errs.Wrap(errs.DeadlineExceeded, ctx.Err(), "%d of %d %s calls", got, n, op)
		}
	}
}

// errCut is what every call returns while the API is cut.
func errCut() error {
	return errs.New(errs.Unavailable, "container engine unavailable: the API connection is cut")
}

// enter counts a call and applies the cut and op's fault. It returns the
// cut channel of the moment, which streams watch.
func (r *Runtime) enter(ctx context.Context, op Op) (<-chan struct{}, error) {
	r.mu.Lock()
	r.calls[op]++
	r.changedLocked()
	for {
		if r.isCut {
			r.mu.Unlock()
			return nil, errCut()
		}
		f := r.faults[op]
		if f == nil {
			cut := r.cut
			r.mu.Unlock()
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
			return cut, nil
		}
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				delete(r.faults, op)
			}
		}
		if !f.Hang {
			r.mu.Unlock()
			return nil, f.Err
		}
		gen, cut := r.faultGen, r.cut
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		case <-gen:
		case <-cut:
		case <-r.ctx.Done():
			return nil, errClosed()
		}
		r.mu.Lock()
	}
}

// changedLocked wakes WaitFor.
func (r *Runtime) changedLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// hasLabels reports whether labels include every pair of want.
func hasLabels(labels, want map[string]string) bool {
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// stamp returns the time of a new event: the clock, made strictly
// increasing so that a replay from an event's time is exact.
func (r *Runtime) stampLocked() time.Time {
	t := r.now()
	if !t.After(r.lastEvent) {
		t = r.lastEvent.Add(time.Nanosecond)
	}
	r.lastEvent = t
	return t
}

// Ping answers unless the API is cut or faulted.
func (r *Runtime) Ping(ctx context.Context) error {
	_, err := r.enter(ctx, OpPing)
	return err
}
