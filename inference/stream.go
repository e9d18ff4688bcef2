package inference

import (
	"context"
	"errors"
	"fmt"

	"aima/errs"
)

// StreamReason says why an engine's answer did not end as an answer ends.
type StreamReason string

// The reasons. They are the code of the error a client gets.
const (
	// StreamBroken: the engine's connection broke mid-answer (the engine
	// died or was stopped).
	StreamBroken StreamReason = "engine_disconnected"
	// StreamUnfinished: a chat or completions stream ended without the
	// [DONE] every engine sends last.
	StreamUnfinished StreamReason = "engine_stream_unfinished"
	// StreamEventTooLarge: one event exceeded maxEvent bytes.
	StreamEventTooLarge StreamReason = "engine_event_too_large"
)

// StreamError ends an answer the engine did not finish. Its kind is
// Unavailable. The gateway passes it on (an error event in a stream, then
// a cut connection), so a client never takes a truncated answer for a
// whole one.
type StreamError struct {
	Service string
	Reason  StreamReason
	Err     error // the transport's error, if any
}

func (e *StreamError) Error() string {
	var msg string
	switch e.Reason {
	case StreamUnfinished:
		msg = "the engine of service " + e.Service + " ended its stream without finishing the answer (no [DONE])"
	case StreamEventTooLarge:
		msg = fmt.Sprintf("the engine of service %s sent an event of more than %d MiB without ending it; the answer was cut", e.Service, maxEvent>>20)
	default:
		msg = "the engine of service " + e.Service + " broke off its answer (its connection ended mid-answer)"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap gives the error its kind.
func (e *StreamError) Unwrap() error { return errs.New(errs.Unavailable, "%s", string(e.Reason)) }

// streamError classifies an error reading the engine's answer: one the
// client's own going away caused stays as it is; any other is the engine's
// (its connection broke).
func (r *Response) streamError(err error) error {
	var se *StreamError
	if errors.As(err, &se) || r.ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return err
	}
	return &StreamError{Service: r.Service.ID, Reason: StreamBroken, Err: err}
}
