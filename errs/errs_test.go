package errs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"aima/errs"
)

func TestKindOf(t *testing.T) {
	t.Parallel()
	invalid := errs.Invalid("port", "port %d out of range", 70000)
	tests := []struct {
		name string
		err  error
		want errs.Kind
	}{
		{"nil", nil, ""},
		{"plain error", errors.New("boom"), errs.Internal},
		{"io.EOF", io.EOF, errs.Internal},
		{"wrapped plain error", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), errs.Internal},
		{"direct", errs.New(errs.Conflict, "busy"), errs.Conflict},
		{"NotFoundf", errs.NotFoundf("no service %q", "x"), errs.NotFound},
		{"Invalid", invalid, errs.InvalidArgument},
		{"fmt %w of *Error", fmt.Errorf("create: %w", invalid), errs.InvalidArgument},
		{"fmt %w twice", fmt.Errorf("api: %w", fmt.Errorf("create: %w", errs.New(errs.Unavailable, "docker down"))), errs.Unavailable},
		{"errors.Join", errors.Join(errors.New("other"), errs.NotFoundf("gone")), errs.NotFound},
		{"context.Canceled", context.Canceled, errs.Canceled},
		{"context.DeadlineExceeded", context.DeadlineExceeded, errs.DeadlineExceeded},
		{"wrapped deadline", fmt.Errorf("pull: %w", context.DeadlineExceeded), errs.DeadlineExceeded},
		{"cause of a cancelled ctx", ctxErr(t), errs.Canceled},
		{"*Error wrapping a context error keeps its kind", errs.Wrap(errs.Unavailable, context.DeadlineExceeded, "docker"), errs.Unavailable},
		{"context error wrapping a *Error", fmt.Errorf("%w: %w", context.Canceled, errs.New(errs.Conflict, "x")), errs.Conflict},
		{"Wrap of a plain error", errs.Wrap(errs.Unavailable, errors.New("dial"), "docker"), errs.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := errs.KindOf(tc.err); got != tc.want {
				t.Errorf("KindOf(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func ctxErr(t *testing.T) error {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx.Err()
}

// An outer *Error wrapping an inner one: errors.As stops at the first
// (outermost) *Error, so the outer kind is reported.
func TestKindOfNestedErrors(t *testing.T) {
	t.Parallel()
	inner := errs.Invalid("model_id", "bad")
	outer := errs.Wrap(errs.Conflict, inner, "create")
	if got := errs.KindOf(outer); got != errs.Conflict {
		t.Errorf("KindOf(Wrap(Conflict, Invalid)) = %s, want conflict (outermost)", got)
	}
	if got := errs.KindOf(fmt.Errorf("api: %w", outer)); got != errs.Conflict {
		t.Errorf("KindOf(fmt(Wrap(Conflict, Invalid))) = %s, want conflict", got)
	}
	if !errors.Is(outer, inner) {
		t.Error("errors.Is(outer, inner) = false: Unwrap is broken")
	}
}

func TestFieldOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("x"), ""},
		{"Invalid", errs.Invalid("port", "bad"), "port"},
		{"Invalid without field", errs.Invalid("", "bad"), ""},
		{"wrapped Invalid", fmt.Errorf("create: %w", errs.Invalid("env", "bad")), "env"},
		{"other kind", errs.New(errs.NotFound, "x"), ""},
		{"context", context.Canceled, ""},
	}
	for _, tc := range tests {
		if got := errs.FieldOf(tc.err); got != tc.want {
			t.Errorf("%s: FieldOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		kind errs.Kind
		want bool
	}{
		{nil, errs.Internal, false},
		{nil, "", false},
		{errors.New("x"), errs.Internal, true},
		{errors.New("x"), errs.NotFound, false},
		{errs.NotFoundf("x"), errs.NotFound, true},
		{fmt.Errorf("w: %w", errs.NotFoundf("x")), errs.NotFound, true},
		{errs.NotFoundf("x"), errs.Internal, false},
		{context.Canceled, errs.Canceled, true},
		{context.DeadlineExceeded, errs.Canceled, false},
	}
	for _, tc := range tests {
		if got := errs.Is(tc.err, tc.kind); got != tc.want {
			t.Errorf("Is(%v, %q) = %v, want %v", tc.err, tc.kind, got, tc.want)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	base := errors.New("connection refused")
	tests := []struct {
		err  *errs.Error
		want string
	}{
		{errs.New(errs.Conflict, "port %d taken", 8000), "port 8000 taken"},
		{errs.Wrap(errs.Unavailable, base, "docker %s", "ping"), "docker ping: connection refused"},
		{&errs.Error{Kind: errs.Internal, Err: base}, "connection refused"},
		{errs.Invalid("port", "port %q", "x"), `port "x"`},
		{errs.NotFoundf("no service %q", "s"), `no service "s"`},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if w := errs.Wrap(errs.Unavailable, base, "x"); !errors.Is(w, base) || errors.Unwrap(w) != base {
		t.Error("Wrap does not unwrap to its cause")
	}
	if errs.New(errs.Conflict, "x").Unwrap() != nil {
		t.Error("New has a cause")
	}
}

func TestKindValuesAreStable(t *testing.T) {
	t.Parallel()
	for k, want := range map[errs.Kind]string{
		errs.InvalidArgument:  "invalid_argument",
		errs.NotFound:         "not_found",
		errs.Conflict:         "conflict",
		errs.Unavailable:      "unavailable",
		errs.DeadlineExceeded: "deadline_exceeded",
		errs.Canceled:         "canceled",
		errs.Internal:         "internal",
	} {
		if string(k) != want {
			t.Errorf("kind %q, want %q", k, want)
		}
	}
}
