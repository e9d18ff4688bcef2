// Package httperr owns what an HTTP error looks like in aima: the JSON body
// ({"error": {"code", "message", "field"}}) and the table from error kind to
// HTTP status. Every HTTP layer answers refusals through it — the API routes
// (httpapi), the access guard (httpguard), MCP's transport checks, the
// metrics routes — and the /v1 gateway takes its statuses from the same
// table while speaking OpenAI's body. JSON-RPC codes (jsonrpc.CodeFor) and
// CLI exit codes (cli.ExitCode) are the other two protocols' tables.
package httperr

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"

	"aima/errs"
)

// Body is the JSON body of every HTTP error.
type Body struct {
	Error Detail `json:"error"`
}

// Detail carries the stable code (the error kind), the message the other
// front-ends show too, and the offending field, if any.
type Detail struct {
	Code    errs.Kind `json:"code"`
	Message string    `json:"message"`
	Field   string    `json:"field,omitempty"`
}

// Status maps an error kind to its HTTP status.
func Status(k errs.Kind) int {
	switch k {
	case errs.InvalidArgument:
		return http.StatusBadRequest
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	case errs.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case errs.Canceled:
		return StatusClientClosedRequest
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.PermissionDenied:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// StatusClientClosedRequest is the status of a request its client gave up
// on (nginx's 499; net/http has no name for it).
const StatusClientClosedRequest = 499

// DetailOf builds the error detail of err.
func DetailOf(err error) Detail {
	return Detail{Code: errs.KindOf(err), Message: err.Error(), Field: errs.FieldOf(err)}
}

// Write answers err as the JSON error body with the status of its kind, or
// with status when it is not zero (405, 413, 415, 429: statuses no kind
// has).
func Write(w http.ResponseWriter, status int, err error) {
	d := DetailOf(err)
	if status == 0 {
		status = Status(d.Code)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)       // messages quote commands and paths: keep <, >, & readable
	_ = enc.Encode(Body{Error: d}) // three strings: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Recover answers a panic in h as an internal error (logged with the path)
// instead of net/http's dropped connection; http.ErrAbortHandler, the
// deliberate abort of a response already under way, passes through.
func Recover(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic in HTTP handler", "path", r.URL.Path, "panic", v)
				Write(w, 0, errs.New(errs.Internal, "internal error"))
			}
		}()
		h.ServeHTTP(w, r)
	})
}
