package httpapi

import (
	"aima/httperr"
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"aima/events"
	"aima/tools"
)

// ErrorTrailer is the HTTP trailer that carries the error (an ErrorBody)
// of a log stream that failed after its first line was sent, when the
// status code can no longer say it. Streamed responses declare it.
const ErrorTrailer = "Aima-Error"

// lineResponse is the reporter of a plain (non-SSE) HTTP call. Operations
// that produce no log lines leave it idle and their output is written as
// one JSON document as usual. service_logs finds a tools.LogSink in it, so
// its lines are written to the response as they are read, never collected:
//
//   - application/json (the default): the same document a collected answer
//     would be, {"service_id":…,"container_id":…,"lines":[…],"total":N},
//     with one line object per text line; a failure after the first line
//     adds "error" to the document and sets the Aima-Error trailer.
//   - text/plain (Accept: text/plain): the lines as `aima service logs`
//     prints them (with their timestamps if asked), one per text line; a
//     failure after the first line is in the Aima-Error trailer only.
//
// A follow's lines are flushed when the engine has nothing more for now
// (Flush), at most once per flushGap: a flood goes out in large writes
// instead of one per read of the engine's socket, and a quiet log's line
// is on the wire at most flushGap after it was read. The deferred flush
// runs on a timer, so the writer is shared under mu.
type lineResponse struct {
	w     http.ResponseWriter
	text  bool
	begun bool
	ts    bool
	n     int

	mu        sync.Mutex
	bw        *bufio.Writer
	buf       []byte
	lastFlush time.Time
	pending   *time.Timer // a deferred flush, if armed
	done      bool        // finish ran: the timer must not write
}

// flushGap is the shortest time between two flushes of a follow.
const flushGap = 2 * time.Millisecond

func newLineResponse(w http.ResponseWriter, r *http.Request) *lineResponse {
	return &lineResponse{w: w, text: acceptsText(r)}
}

// acceptsText: the client asked for plain text lines.
func acceptsText(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/plain")
}

// Event implements tools.Reporter; a plain call has no progress channel.
func (*lineResponse) Event(events.Event) {}

// Delta implements tools.Reporter; a plain call's result holds the whole
// answer.
func (*lineResponse) Delta(tools.ChatDelta) {}

// BeginLogs implements tools.LogSink: the status line, headers and, for
// JSON, the document up to its lines.
func (lr *lineResponse) BeginLogs(head tools.LogsOutput) {
	lr.begun, lr.ts = true, head.Timestamps
	h := lr.w.Header()
	h.Set("Trailer", ErrorTrailer)
	h.Set("X-Content-Type-Options", "nosniff")
	if lr.text {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/json")
	}
	lr.w.WriteHeader(http.StatusOK)
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.bw = bufio.NewWriterSize(lr.w, 64<<10)
	if lr.text {
		return
	}
	b := append(lr.buf[:0], `{"service_id":`...)
	b = appendJSONString(b, head.ServiceID)
	if head.ContainerID != "" {
		b = append(b, `,"container_id":`...)
		b = appendJSONString(b, head.ContainerID)
	}
	b = append(b, `,"lines":[`...)
	lr.buf = b
	_, _ = lr.bw.Write(b)
}

// Log implements tools.Reporter: one line, buffered.
func (lr *lineResponse) Log(l tools.LogLine) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	b := lr.buf[:0]
	if lr.text {
		if lr.ts && !l.Time.IsZero() {
			b = l.Time.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, ' ')
		}
		b = append(b, l.Text...)
		b = append(b, '\n')
	} else {
		if lr.n > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n{\"stream\":"...)
		b = appendJSONString(b, l.Stream)
		b = append(b, `,"time":"`...)
		b = l.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","text":`...)
		b = appendJSONString(b, l.Text)
		b = append(b, '}')
	}
	lr.n++
	lr.buf = b
	_, _ = lr.bw.Write(b) // a client gone away ends the request's context
}

// NeedsTimes implements tools.LogSink: JSON lines carry their time, text
// lines only with timestamps.
func (lr *lineResponse) NeedsTimes(timestamps bool) bool { return !lr.text || timestamps }

// Flush implements tools.LogSink: now, or flushGap after the last flush.
func (lr *lineResponse) Flush() {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if lr.bw.Buffered() == 0 || lr.pending != nil {
		return
	}
	if wait := flushGap - time.Since(lr.lastFlush); wait > 0 {
		lr.pending = time.AfterFunc(wait, func() {
			lr.mu.Lock()
			defer lr.mu.Unlock()
			lr.pending = nil
			if !lr.done {
				lr.flushLocked()
			}
		})
		return
	}
	lr.flushLocked()
}

func (lr *lineResponse) flushLocked() {
	_ = lr.bw.Flush()
	if f, ok := lr.w.(http.Flusher); ok {
		f.Flush()
	}
	lr.lastFlush = time.Now()
}

// finish ends a call: the output as one document when no line was
// streamed, else the end of the streamed document and the error trailer.
func (lr *lineResponse) finish(r *http.Request, out any, err error) {
	if !lr.begun {
		if err != nil {
			writeError(lr.w, CauseOf(r.Context(), err))
			return
		}
		writeJSON(lr.w, http.StatusOK, out)
		return
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.done = true
	if lr.pending != nil {
		lr.pending.Stop()
	}
	var body []byte
	if err != nil {
		body, _ = json.Marshal(httperr.Body{Error: httperr.DetailOf(CauseOf(r.Context(), err))})
	}
	if !lr.text {
		total := lr.n
		if o, ok := out.(tools.LogsOutput); ok {
			total = o.Total
		}
		b := append(lr.buf[:0], "\n],\"total\":"...)
		b = strconv.AppendInt(b, int64(total), 10)
		if body != nil {
			b = append(b, `,"error":`...)
			b = append(b, body[len(`{"error":`):len(body)-1]...)
		}
		b = append(b, "}\n"...)
		_, _ = lr.bw.Write(b)
	}
	_ = lr.bw.Flush()
	if body != nil {
		lr.w.Header().Set(ErrorTrailer, string(body))
	}
}

// appendJSONString appends s as a JSON string, as writeJSON's encoder
// writes it (no HTML escaping); plain printable ASCII, the common case of
// a log line, is copied without going through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s)
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
