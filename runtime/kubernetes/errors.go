package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"aima/errs"
)

// classify gives an error from client-go an errs kind; what names the
// operation and its object and prefixes the message.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case apierrors.IsNotFound(err):
		return errs.Wrap(errs.NotFound, err, "%s", what)
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return errs.Wrap(errs.Conflict, err, "%s", what)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return errs.Wrap(errs.InvalidArgument, err, "%s", what)
	case apierrors.IsForbidden(err):
		return errs.Wrap(errs.PermissionDenied, err, "%s", what)
	case apierrors.IsUnauthorized(err):
		return errs.Wrap(errs.Unauthenticated, err, "%s", what)
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err):
		return errs.Wrap(errs.Unavailable, err, "%s", what)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		return errs.Wrap(errs.Unavailable, err, "kubernetes API server unavailable: %s", what)
	}
	if _, ok := err.(apierrors.APIStatus); ok {
		return errs.Wrap(errs.Internal, err, "%s", what)
	}
	// Transport failures (refused, reset, TLS) without a status.
	return errs.Wrap(errs.Unavailable, err, "kubernetes API server unavailable: %s", what)
}
