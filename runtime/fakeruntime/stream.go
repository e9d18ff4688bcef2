package fakeruntime

import (
	"context"
	"fmt"

	"aima/errs"
)

// stream is what can end a streaming call (events, logs, a wait, a pull):
// the caller's ctx, a cut of the API, or Close.
type stream struct {
	ctx    context.Context
	cut    <-chan struct{}
	closed <-chan struct{}
	what   string
}

func (r *Runtime) stream(ctx context.Context, cut <-chan struct{}, what string) stream {
	return stream{ctx: ctx, cut: cut, closed: r.ctx.Done(), what: what}
}

func errClosed() error {
	return errs.New(errs.Unavailable, "container engine unavailable: the fake runtime is closed")
}

// ended says why the stream must end now, or nil. A cut comes first: a cut
// connection delivers nothing more, not even what was already queued.
func (s stream) ended() error {
	select {
	case <-s.cut:
		return errCut()
	default:
	}
	select {
	case <-s.ctx.Done():
		return fmt.Errorf("%s: %w", s.what, s.ctx.Err())
	case <-s.closed:
		return errClosed()
	default:
		return nil
	}
}

// wait blocks until wake fires or the stream ends (its error).
func wait[T any](s stream, wake <-chan T) error {
	select {
	case <-wake:
		return nil
	case <-s.ctx.Done():
	case <-s.cut:
	case <-s.closed:
	}
	return s.ended()
}

// send delivers v unless the stream ends first.
func send[T any](s stream, out chan<- T, v T) error {
	if err := s.ended(); err != nil {
		return err
	}
	select {
	case out <- v:
		return nil
	case <-s.ctx.Done():
	case <-s.cut:
	case <-s.closed:
	}
	return s.ended()
}
