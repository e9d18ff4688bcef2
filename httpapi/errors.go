package httpapi

import (
	"bytes"
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

// writeJSON answers v as JSON with status. The document is encoded before
// the status is sent, so a value that cannot be encoded (a NaN, an
// infinity, a failing MarshalJSON) is answered as a 500 internal error,
// never as a 200 with an empty or cut body. A jsonWriter streams; if it
// fails after part of the document went out, the connection is aborted so
// the client sees a truncated transfer rather than a complete answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if jw, ok := v.(jsonWriter); ok {
		lw := &headerOnWrite{w: w, status: status}
		if err := jw.WriteJSON(lw); err != nil {
			if !lw.sent {
				writeEncodeFailure(w, err)
				return
			}
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(lw, "\n")
		return
	}
	var body []byte
	var err error
	if m, ok := v.(json.Marshaler); ok {
		// Written as is: encoding/json would validate and copy it again
		// (for a list of 10,000 services, megabytes).
		if body, err = m.MarshalJSON(); err == nil {
			body = append(body, '\n')
		}
	} else {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		err, body = enc.Encode(v), buf.Bytes()
	}
	if err != nil {
		writeEncodeFailure(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeEncodeFailure answers a response that could not be encoded.
func writeEncodeFailure(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: Detail(errs.Wrap(errs.Internal, err, "encoding the response"))})
}

// headerOnWrite sends the status with the first byte of the body, so a
// streamed document that fails before its first byte can still be
// answered as an error.
type headerOnWrite struct {
	w      http.ResponseWriter
	status int
	sent   bool
}

func (h *headerOnWrite) Write(p []byte) (int, error) {
	if !h.sent {
		h.sent = true
		h.w.Header().Set("Content-Type", "application/json")
		h.w.WriteHeader(h.status)
	}
	return h.w.Write(p)
}
