package jsonrpc

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"aima/tools"
)

// Path is where the daemon serves JSON-RPC over HTTP.
const Path = "/rpc"

// Handler serves JSON-RPC over HTTP POST (the daemon mounts it at Path).
// The body is one request or a batch, answered exactly as on stdio:
//
//   - Content-Type: application/json, HTTP 200, with the response or the
//     batch's response array — also for JSON-RPC errors, which live in the
//     body (-32700 for a body that is not JSON, and so on).
//   - HTTP 204 with no body when the request holds only notifications (they
//     have run by then).
//   - With "Accept: text/event-stream": HTTP 200 and Server-Sent Events;
//     every notification of the running calls is one event
//     ("event: message", "data: <notification>"), and the last event carries
//     the response (or the batch's response array), each flushed at once.
//     Without that header the notifications are dropped.
//   - HTTP 405 for anything but POST, HTTP 413 for a body over
//     Options.MaxBodyBytes; both with a -32600 error body.
//   - A batch of more than Options.MaxBatch requests is answered (HTTP 200)
//     with one -32600 error; the calls of a batch run at most
//     Options.BatchConcurrency at a time.
//
// The handler lifts the server's read and write deadlines once the body is
// read, so a long call (service.start with wait) is not cut by a timeout;
// a client that disconnects cancels its calls.
func Handler(caller tools.Caller, opts Options) http.Handler {
	return &handler{d: newDispatcher(caller, opts), max: opts.maxBody()}
}

type handler struct {
	d   *dispatcher
	max int64
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorResponse(nil, protocolError(CodeInvalidRequest,
			"invalid request: HTTP method %s not allowed; POST a JSON-RPC request", r.Method)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorResponse(nil, protocolError(CodeInvalidRequest,
				"invalid request: body exceeds %d bytes", h.max)))
			return
		}
		writeJSON(w, http.StatusBadRequest, errorResponse(nil, protocolError(CodeParseError, "parse error: reading the body: %v", err)))
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // not every ResponseWriter supports deadlines
	_ = rc.SetWriteDeadline(time.Time{})

	ctx := r.Context()
	m := h.d.parse(body)
	switch {
	case m.silent():
		h.d.run(ctx, m, nil, nil)
		w.WriteHeader(http.StatusNoContent)
	case strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		sse := &sseWriter{w: w, rc: rc}
		sse.send(h.d.run(ctx, m, sse.send, nil))
	default:
		writeJSON(w, http.StatusOK, h.d.run(ctx, m, nil, nil))
	}
}

func writeJSON(w http.ResponseWriter, status int, msg []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(msg, '\n'))
}

// sseWriter writes each JSON-RPC message as one SSE event and flushes it;
// concurrent calls of a batch share it.
type sseWriter struct {
	mu sync.Mutex
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *sseWriter) send(msg []byte) {
	if msg == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// msg is compact JSON, so it fits on one data line.
	_, _ = fmt.Fprintf(s.w, "event: message\ndata: %s\n\n", msg)
	_ = s.rc.Flush()
}
