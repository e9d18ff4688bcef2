package httperr

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"aima/errs"
)

func TestStatusFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind errs.Kind
		want int
	}{
		{errs.InvalidArgument, http.StatusBadRequest},
		{errs.NotFound, http.StatusNotFound},
		{errs.Conflict, http.StatusConflict},
		{errs.Unavailable, http.StatusServiceUnavailable},
		{errs.DeadlineExceeded, http.StatusGatewayTimeout},
		{errs.Canceled, 499},
		{errs.Internal, http.StatusInternalServerError},
		{"", http.StatusInternalServerError},
		{"something_new", http.StatusInternalServerError},
	}
	for _, tc := range tests {
		if got := Status(tc.kind); got != tc.want {
			t.Errorf("Status(%q) = %d, want %d", tc.kind, got, tc.want)
		}
	}
}

func TestDetail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want Detail
	}{
		{errs.Invalid("port", "bad port"), Detail{Code: errs.InvalidArgument, Message: "bad port", Field: "port"}},
		{fmt.Errorf("create: %w", errs.NotFoundf("no model")), Detail{Code: errs.NotFound, Message: "create: no model"}},
		{context.DeadlineExceeded, Detail{Code: errs.DeadlineExceeded, Message: "context deadline exceeded"}},
		{fmt.Errorf("boom"), Detail{Code: errs.Internal, Message: "boom"}},
	}
	for _, tc := range tests {
		if got := DetailOf(tc.err); got != tc.want {
			t.Errorf("DetailOf(%v) = %+v, want %+v", tc.err, got, tc.want)
		}
	}
	// The JSON shape other clients parse.
	b, err := json.Marshal(Body{Error: DetailOf(errs.Invalid("port", "bad"))})
	if err != nil || string(b) != `{"error":{"code":"invalid_argument","message":"bad","field":"port"}}` {
		t.Errorf("ErrorBody JSON = %s, %v", b, err)
	}
	b, _ = json.Marshal(Body{Error: DetailOf(errs.NotFoundf("x"))})
	if string(b) != `{"error":{"code":"not_found","message":"x"}}` {
		t.Errorf("ErrorBody JSON without field = %s", b)
	}
}
