package fakeruntime

import (
	"context"
	"time"

	"aima/errs"
	"aima/runtime"
)

// Pull is how a pull of one image goes.
type Pull struct {
	// Progress is reported in order, Delay apart.
	Progress []runtime.PullProgress
	Delay    time.Duration
	// Err, if set, ends the pull after the progress; the image stays
	// absent. Without it the image is present afterwards.
	Err error
}

// AddImage makes images present locally.
func (r *Runtime) AddImage(refs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ref := range refs {
		r.images[ref] = true
	}
}

// RemoveImage makes an image absent.
func (r *Runtime) RemoveImage(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.images, ref)
}

// SetPull says how pulling ref goes. An image without one cannot be
// pulled: errs.NotFound, as from a registry that does not have it.
func (r *Runtime) SetPull(ref string, p Pull) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pulls[ref] = p
}

// ImageExists reports whether ref is present locally.
func (r *Runtime) ImageExists(ctx context.Context, ref string) (bool, error) {
	if _, err := r.enter(ctx, OpImageExists); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.images[ref], nil
}

// PullImage plays ref's Pull.
func (r *Runtime) PullImage(ctx context.Context, ref string, opts runtime.PullOptions) error {
	cut, err := r.enter(ctx, OpPull)
	if err != nil {
		return err
	}
	r.mu.Lock()
	p, ok := r.pulls[ref]
	r.mu.Unlock()
	if !ok {
		return errs.NotFoundf("pull image %s: image not found", ref)
	}
	for i, msg := range p.Progress {
		if i > 0 && p.Delay > 0 {
			t := time.NewTimer(p.Delay)
			err := wait(r.stream(ctx, cut, "pull image "+ref), t.C)
			t.Stop()
			if err != nil {
				return err
			}
		}
		if opts.Progress != nil {
			opts.Progress(msg)
		}
	}
	if p.Err != nil {
		return p.Err
	}
	r.AddImage(ref)
	return nil
}
