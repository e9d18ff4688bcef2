package httpapi

import (
	"encoding/json"
	"io"
	"net/http"

	"aima/errs"
)

// ErrorBody is the JSON body of every HTTP error.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries the stable code (the error kind), the message the
// other front-ends show too, and the offending field, if any.
type ErrorDetail struct {
	Code    errs.Kind `json:"code"`
	Message string    `json:"message"`
	Field   string    `json:"field,omitempty"`
}

// StatusFor maps an error kind to its HTTP status. This table and its
// siblings in the other front-ends are the only places kinds become codes.
func StatusFor(k errs.Kind) int {
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
		return 499 // client closed request
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.PermissionDenied:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// Detail builds the error detail of err.
func Detail(err error) ErrorDetail {
	return ErrorDetail{Code: errs.KindOf(err), Message: err.Error(), Field: errs.FieldOf(err)}
}

func writeError(w http.ResponseWriter, err error) {
	d := Detail(err)
	writeJSON(w, StatusFor(d.Code), ErrorBody{Error: d})
}

// WriteError writes err as the JSON error body with the status of its kind,
// or with status when it is not zero (413, 415: statuses no kind has). Other
// HTTP layers (the access guard, MCP's transport checks) use it so every
// refusal has the same body.
func WriteError(w http.ResponseWriter, status int, err error) {
	d := Detail(err)
	if status == 0 {
		status = StatusFor(d.Code)
	}
	writeJSON(w, status, ErrorBody{Error: d})
}

// jsonWriter is an output that writes its JSON document itself, a piece at
// a time (tools.ServiceList: megabytes for 10,000 services), rather than
// being held whole in memory.
type jsonWriter interface {
	WriteJSON(w io.Writer) error
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if jw, ok := v.(jsonWriter); ok {
		if jw.WriteJSON(w) == nil {
			_, _ = io.WriteString(w, "\n")
		}
		return
	}
	if m, ok := v.(json.Marshaler); ok {
		// Written as is: encoding/json would validate and copy it again
		// (for a list of 10,000 services, megabytes).
		if b, err := m.MarshalJSON(); err == nil {
			_, _ = w.Write(append(b, '\n'))
			return
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
