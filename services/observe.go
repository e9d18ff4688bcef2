package services

import (
	"context"
	"errors"
	"time"

	"aima/errs"
	"aima/events"
	"aima/runtime"
)

// LogsRequest selects log lines.
type LogsRequest struct {
	Follow bool
	Tail   int // <0 = all
	Since  time.Time
	// NoTimes: the caller prints the text alone (see runtime.LogOptions).
	NoTimes bool
	// OnWait: see runtime.LogOptions.
	OnWait func()
}

// LogStream is a service's log, found and ready to read.
type LogStream struct {
	Service Service
	read    func(ctx context.Context, each func(runtime.LogLine) error) error
}

// Read hands the lines to each in the caller's goroutine, as
// runtime.Runtime.Logs does, and returns how the log ended.
func (ls LogStream) Read(ctx context.Context, each func(runtime.LogLine) error) error {
	return ls.read(ctx, each)
}

// Logs finds the service's own container output (never another
// service's). Without a container (never started) it is NotFound; a
// container that is gone leaves the last lines its failure kept.
func (m *Manager) Logs(ctx context.Context, ref string, req LogsRequest) (LogStream, error) {
	s, err := m.Get(ctx, ref)
	if err != nil {
		return LogStream{}, err
	}
	id := s.ContainerID
	if id == "" {
		list, err := m.rt.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelService: s.ID}})
		if err != nil {
			return LogStream{}, err
		}
		c, ok := newest(list)
		if !ok {
			return LogStream{}, errs.NotFoundf("service %s has no container yet; start it first", s.ID)
		}
		id = c.ID
	}
	if _, err := m.rt.InspectContainer(ctx, id); err != nil {
		if errs.Is(err, errs.NotFound) && len(s.LogTail) > 0 {
			// The container is gone but the failure kept its last lines.
			return LogStream{Service: s, read: func(_ context.Context, each func(runtime.LogLine) error) error {
				for _, l := range s.LogTail {
					if err := each(runtime.LogLine{Stream: "stdout", Text: l}); err != nil {
						return err
					}
				}
				return nil
			}}, nil
		}
		if errs.Is(err, errs.NotFound) {
			return LogStream{}, errs.NotFoundf("the container of service %s no longer exists", s.ID)
		}
		return LogStream{}, err
	}
	opts := runtime.LogOptions{Follow: req.Follow, Tail: req.Tail, Since: req.Since, NoTimes: req.NoTimes, OnWait: req.OnWait}
	return LogStream{Service: s, read: func(ctx context.Context, each func(runtime.LogLine) error) error {
		return m.rt.Logs(ctx, id, opts, each)
	}}, nil
}

// Events returns the service's history after the cursor.
func (m *Manager) Events(ctx context.Context, ref string, after uint64) (Service, []events.Event, error) {
	s, err := m.Get(ctx, ref)
	if err != nil {
		return Service{}, nil, err
	}
	return s, m.bus.History(s.ID, after), nil
}

// Wait blocks until the service reaches status want, returning the record.
// It fails with the service's reason when the service settles in another
// terminal status (e.g. failed while waiting for running), and with
// DeadlineExceeded when timeout passes.
func (m *Manager) Wait(ctx context.Context, ref string, want Status, timeout time.Duration) (Service, error) {
	s, err := m.Get(ctx, ref)
	if err != nil {
		return Service{}, err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	sub := m.bus.Subscribe(s.ID, m.bus.LastSeq(s.ID))
	for {
		if s, err = m.col.Get(ctx, s.ID); err != nil {
			return s, err
		}
		if s.Status == want {
			return s, nil
		}
		if cannotReach(s.Status, want) {
			return s, settledError(s, want)
		}
		for {
			ev, err := sub.Next(ctx)
			if errors.Is(err, events.ErrForgotten) {
				return s, ErrDeleted(s.ID)
			}
			if err != nil {
				if ctx.Err() != nil && errs.KindOf(err) != errs.Canceled {
					return s, errs.New(errs.DeadlineExceeded, "service %s is %s (phase %s), not %s, after %s", s.ID, s.Status, s.Phase, want, timeout)
				}
				return s, err
			}
			if err := DeletedError(ev); err != nil {
				return s, err
			}
			if ev.Type == events.TypeStatus {
				break
			}
		}
	}
}

// cannotReach reports whether a service settled in status has no way to
// reach want without another request.
func cannotReach(status, want Status) bool {
	switch want {
	case StatusRunning:
		return status == StatusFailed || status == StatusStopped
	case StatusStopped:
		return status == StatusFailed
	case StatusFailed:
		return status == StatusStopped
	}
	return false
}

// settledError explains why a wait cannot succeed.
func settledError(s Service, want Status) error {
	msg := "service " + s.ID + " is " + string(s.Status) + ", not " + string(want)
	if s.Reason != "" {
		msg += ": " + s.Reason
	}
	return errs.New(errs.Conflict, "%s", msg)
}
