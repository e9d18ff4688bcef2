package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"aima/errs"
)

// daemonError drops the client's "Error response from daemon: " prefix from
// messages (it says nothing a user can act on) while keeping the original
// error in the chain for errors.Is against containerd's errdefs.
type daemonError struct{ err error }

func (e daemonError) Error() string {
	return strings.TrimPrefix(e.err.Error(), "Error response from daemon: ")
}

func (e daemonError) Unwrap() error { return e.err }

// classify gives an error from the moby client an errs kind. what names the
// operation and its object ("inspect container abc") and prefixes the message.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	de := daemonError{err}
	msg := de.Error()
	switch {
	case engineGone(err):
		return errs.Wrap(errs.Unavailable, de, "docker engine unavailable")
	case cerrdefs.IsNotFound(err):
		return errs.Wrap(errs.NotFound, de, "%s", what)
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err), isPortConflict(msg):
		return errs.Wrap(errs.Conflict, de, "%s", what)
	case strings.Contains(msg, "could not select device driver"):
		// GPUs requested on a host without the NVIDIA container runtime.
		return errs.Wrap(errs.Unavailable, de, "%s", what)
	case cerrdefs.IsInvalidArgument(err):
		return errs.Wrap(errs.InvalidArgument, de, "%s", what)
	case cerrdefs.IsUnavailable(err):
		return errs.Wrap(errs.Unavailable, de, "%s", what)
	}
	return errs.Wrap(errs.Internal, de, "%s", what)
}

// engineGone reports errors that mean the engine itself cannot be reached or
// dropped the connection, as opposed to an answer from the engine.
func engineGone(err error) bool {
	return client.IsErrConnectionFailed(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOENT)
}

// isPortConflict matches the engine's messages for a host port taken by
// another container ("Bind for 127.0.0.1:8000 failed: port is already
// allocated") or by a host process ("address already in use"). Docker reports
// both as HTTP 500, so only the text tells them apart.
func isPortConflict(msg string) bool {
	return strings.Contains(msg, "port is already allocated") ||
		strings.Contains(msg, "address already in use")
}

// removalInProgress matches Docker's refusal to remove a container whose
// removal another request already started (HTTP 409, "removal of container
// X is already in progress"); the status code alone also means a running
// container without force, so the text tells them apart.
func removalInProgress(err error) bool {
	return cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "is already in progress")
}

// streamEnd classifies the error that ended a long-lived stream (events,
// logs, wait): the caller's context ending is kept as is; anything else means
// the engine went away mid-stream.
func streamEnd(ctx context.Context, err error, what string) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	if err == nil {
		err = io.EOF
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if engineGone(err) || !isDaemonAnswer(err) {
		return errs.Wrap(errs.Unavailable, daemonError{err}, "docker engine unavailable: %s ended", what)
	}
	return classify(err, what)
}

// isDaemonAnswer reports whether err is an HTTP error answer from the engine
// (it then carries an errdefs class) rather than a transport failure.
func isDaemonAnswer(err error) bool {
	return cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) ||
		cerrdefs.IsInvalidArgument(err) || cerrdefs.IsInternal(err) ||
		cerrdefs.IsUnavailable(err) || cerrdefs.IsPermissionDenied(err)
}
