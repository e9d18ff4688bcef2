package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"aima/errs"
	"aima/httperr"
)

func writeError(w http.ResponseWriter, err error) {
	httperr.Write(w, 0, err)
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
	httperr.Write(w, http.StatusInternalServerError, errs.Wrap(errs.Internal, err, "encoding the response"))
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
