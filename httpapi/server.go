// Package httpapi serves aima's operations over HTTP: /api/<group>/<verb>
// for every operation of the registry (GET with query parameters for
// read-only ones, POST with a JSON body for all), Server-Sent Events for
// progress and streams, and /health. It is a front-end: it decodes, calls
// tools, and maps errors; it implements no operation itself.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"aima/errs"
	"aima/events"
	"aima/httperr"
	"aima/tools"
)

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 1 << 20

// Server is the HTTP front-end.
type Server struct {
	domain    *tools.Domain
	caller    tools.Caller
	mux       *http.ServeMux
	patterns  []string // every pattern registered on mux, in order
	log       *slog.Logger
	encodings eventEncodings
}

// New builds the HTTP API over domain, running every operation through caller
// (nil: tools.LocalCaller on domain), the same caller the daemon gives the other
// front-ends. It serves /api/ and /health; the daemon mounts it beside the
// other front-ends on its own root router.
func New(domain *tools.Domain, caller tools.Caller, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	if caller == nil {
		caller = tools.LocalCaller{Domain: domain}
	}
	s := &Server{domain: domain, caller: caller, mux: http.NewServeMux(), log: log}
	for _, op := range tools.Visible(domain.ReadOnly) {
		s.handle("/api/"+op.Group()+"/"+op.Verb(), s.opHandler(op))
	}
	health, _ := tools.Lookup("health_check")
	s.handle("GET /health", s.opHandler(health))
	s.handle("GET /api/events", http.HandlerFunc(s.eventsStream))
	for _, p := range []string{"/health", "/api/events"} {
		s.handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET")
			writeJSON(w, http.StatusMethodNotAllowed, httperr.Body{Error: httperr.Detail{Code: errs.InvalidArgument, Message: "method " + r.Method + " not allowed; use GET"}})
		}))
	}
	s.handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errs.NotFoundf("no route %s %s; the operations are /api/<group>/<verb> (docs/reference/http.md)", r.Method, r.URL.Path))
	}))
	return s
}

// handle registers one of the API's routes.
func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.patterns = append(s.patterns, pattern)
}

// Patterns lists every pattern registered on the server's mux, in
// net/http.ServeMux syntax and in the order
// they were registered, so the daemon can say which routes it serves.
func (s *Server) Patterns() []string { return append([]string(nil), s.patterns...) }

// Handler returns the API's handler (its routes under /api/ and /health)
// with panic recovery.
func (s *Server) Handler() http.Handler { return httperr.Recover(s.log, s.mux) }

func (s *Server) opHandler(op tools.Op) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var raw json.RawMessage
		switch r.Method {
		case http.MethodGet:
			if !op.Annotations().ReadOnly {
				w.Header().Set("Allow", "POST")
				writeJSON(w, http.StatusMethodNotAllowed, httperr.Body{Error: httperr.Detail{Code: errs.InvalidArgument, Message: op.Name() + " changes state: use POST with a JSON body"}})
				return
			}
			var err error
			if raw, err = QueryToJSON(r.URL.Query(), op.InputSchema()); err != nil {
				writeError(w, err)
				return
			}
		case http.MethodPost:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					writeJSON(w, http.StatusRequestEntityTooLarge, httperr.Body{Error: httperr.Detail{Code: errs.InvalidArgument, Message: fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes)}})
					return
				}
				writeError(w, errs.Invalid("", "reading body: %v", err))
				return
			}
			raw = body
			if len(strings.TrimSpace(string(body))) == 0 && len(r.URL.Query()) > 0 {
				if raw, err = QueryToJSON(r.URL.Query(), op.InputSchema()); err != nil {
					writeError(w, err)
					return
				}
			}
		default:
			w.Header().Set("Allow", "GET, POST")
			writeJSON(w, http.StatusMethodNotAllowed, httperr.Body{Error: httperr.Detail{Code: errs.InvalidArgument, Message: "method " + r.Method + " not allowed"}})
			return
		}
		if wantsStream(r, op, raw) {
			s.serveStream(w, r, op, raw)
			return
		}
		lr := newLineResponse(w, r)
		out, err := s.caller.Call(r.Context(), op, raw, lr)
		lr.finish(r, out, err)
	})
}

// wantsStream: SSE when the client accepts it, or when the input asks to
// follow (a follow never ends, so it cannot be one collected document).
// A log is the exception: its lines are written as they are read (see
// lineResponse), so a follow of it is served as SSE only when asked for by
// Accept or when the client names neither JSON nor plain text.
func wantsStream(r *http.Request, op tools.Op, raw json.RawMessage) bool {
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, "text/event-stream") {
		return true
	}
	if _, ok := op.InputSchema().Properties["follow"]; !ok {
		return false // the decoder rejects the unknown field
	}
	if _, log := op.NewOutput().(*tools.LogsOutput); log && (strings.Contains(accept, "application/json") || strings.Contains(accept, "text/plain")) {
		return false
	}
	var probe struct {
		Follow bool `json:"follow"`
	}
	_ = json.Unmarshal(raw, &probe)
	return probe.Follow
}

// sseReporter writes progress and log lines as SSE events.
type sseReporter struct {
	mu     sync.Mutex
	w      http.ResponseWriter
	f      http.Flusher
	enc    *eventEncodings
	buf    []byte
	bus    *events.Bus // told of each live event written to the socket (Bus.RecordSocketWrite); nil: none
	opened time.Time   // events published before it are history, not live
}

func (s *sseReporter) send(event string, v any) {
	b, _ := json.Marshal(v)
	s.write(event, b)
}

func (s *sseReporter) write(event string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := append(s.buf[:0], "event: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	s.buf = b
	_, _ = s.w.Write(b)
	if s.f != nil {
		s.f.Flush()
	}
}

// Event writes ev and, when it was published while the stream was open,
// reports to the bus that it reached this subscriber's socket.
func (s *sseReporter) Event(ev events.Event) {
	s.write("progress", s.enc.encode(ev))
	if s.bus != nil && !ev.Time.Before(s.opened) {
		s.bus.RecordSocketWrite(ev)
	}
}

// eventEncodings keeps the newest event's JSON per service, so an event
// that many clients follow is encoded once, not once per client.
type eventEncodings struct {
	mu   sync.RWMutex // read-locked by the many clients of one event at once
	last map[string]encodedEvent
}

type encodedEvent struct {
	seq uint64
	raw []byte
}

// maxEncodings bounds the map (one entry per service followed lately).
const maxEncodings = 1024

func (e *eventEncodings) encode(ev events.Event) []byte {
	e.mu.RLock()
	c, ok := e.last[ev.ServiceID]
	e.mu.RUnlock()
	if ok && c.seq == ev.Seq && ev.Seq != 0 {
		return c.raw
	}
	raw, _ := json.Marshal(ev)
	e.mu.Lock()
	if e.last == nil || len(e.last) >= maxEncodings {
		e.last = map[string]encodedEvent{}
	}
	if c := e.last[ev.ServiceID]; ev.Seq >= c.seq {
		e.last[ev.ServiceID] = encodedEvent{seq: ev.Seq, raw: raw}
	}
	e.mu.Unlock()
	return raw
}

func (s *sseReporter) Log(l tools.LogLine) {
	s.send("log", tools.LogLine{Stream: l.Stream, Time: l.Time, Text: l.Text})
}

// Delta sends a piece of an answer as an SSE event "delta".
func (s *sseReporter) Delta(d tools.ChatDelta) { s.send("delta", d) }

// startSSE sends the headers of an event stream (unbuffered by proxies)
// and returns its writer.
func (s *Server) startSSE(w http.ResponseWriter) *sseReporter {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	rep := &sseReporter{w: w, f: f, enc: &s.encodings, opened: time.Now()}
	if s.domain.Services != nil { // nil in front-end tests without a domain
		rep.bus = s.domain.Services.Bus()
	}
	if f != nil {
		f.Flush()
	}
	return rep
}

// serveStream runs op with its progress streamed as SSE, ending with one
// "result" or "error" event.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, op tools.Op, raw json.RawMessage) {
	rep := s.startSSE(w)
	out, err := s.caller.Call(r.Context(), op, raw, rep)
	if err != nil {
		rep.send("error", httperr.Body{Error: httperr.DetailOf(CauseOf(r.Context(), err))})
		return
	}
	rep.send("result", out)
}

// eventsStream is GET /api/events?service_id=ID[&after=N]: the service's
// history, then live events, as SSE, until the client disconnects. Without
// a service id it is the daemon-wide feed (followAll).
func (s *Server) eventsStream(w http.ResponseWriter, r *http.Request) {
	op, _ := tools.Lookup("service_events")
	q := r.URL.Query()
	if !q.Has("service_id") {
		s.followAll(w, r)
		return
	}
	q.Set("follow", "true")
	raw, err := QueryToJSON(q, op.InputSchema())
	if err != nil {
		writeError(w, err)
		return
	}
	s.serveStream(w, r, op, raw)
}

// CauseOf replaces a cancellation error with the reason the request's
// context was cancelled, when the daemon gave one (e.g. shutting down).
func CauseOf(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	var e *errs.Error
	if errors.As(context.Cause(ctx), &e) {
		return e
	}
	return err
}

// QueryToJSON turns query parameters into a JSON object, typed by the
// operation's input schema; a value of the wrong type is InvalidArgument.
func QueryToJSON(q map[string][]string, schema *jsonschema.Schema) (json.RawMessage, error) {
	obj := map[string]any{}
	for k, vals := range q {
		if len(vals) == 0 {
			continue
		}
		prop := schema.Properties[k]
		typ := ""
		if prop != nil {
			typ = tools.SchemaType(prop)
		}
		v := vals[len(vals)-1]
		switch typ {
		case "integer":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, errs.Invalid(k, "field %q must be an integer, not %q", k, v)
			}
			obj[k] = n
		case "boolean":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, errs.Invalid(k, "field %q must be true or false, not %q", k, v)
			}
			obj[k] = b
		case "array":
			obj[k] = vals
		default:
			obj[k] = v
		}
	}
	return json.Marshal(obj)
}
