package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"aima/errs"
	"aima/events"
)

// keepAliveInterval is how often an idle daemon-wide stream sends an SSE
// comment, so proxies keep it open and a dead peer is noticed.
const keepAliveInterval = 15 * time.Second

// reconnectMillis is the SSE retry hint: how soon a browser's EventSource
// reconnects after the stream breaks (e.g. the daemon restarted).
const reconnectMillis = 1000

// followAll is GET /api/events without a service id: every service's events
// from the moment the stream opens (events.Bus.Follow), live only, as SSE
// "progress" events (the per-service stream's framing). Nothing is
// replayed: a client opens the stream, then reads the records
// (service_list), and applies the events that follow; so it misses nothing,
// because the cursor is taken before the response headers are sent. If the
// client reads too slowly and events are dropped it gets a "resync" event
// and should read the records again. Idle streams carry a comment every
// keepAliveInterval. The stream ends when the client disconnects or the
// daemon shuts down.
func (s *Server) followAll(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, errs.Invalid("service_id", "GET /api/events takes service_id (and after) for one service's history, or no parameters for every service's live events"))
		return
	}
	feed := s.domain.Services.Bus().Follow()
	rep := s.startSSE(w)
	rep.comment(fmt.Sprintf("retry: %d\n", reconnectMillis))
	for {
		ctx, cancel := context.WithTimeout(r.Context(), keepAliveInterval)
		ev, err := feed.Next(ctx)
		cancel()
		switch {
		case err == nil:
			rep.Event(ev)
		case errors.Is(err, events.ErrFeedGap):
			rep.send("resync", map[string]string{"reason": "this stream fell behind and missed events; read the services again"})
		case r.Context().Err() != nil:
			return
		default:
			rep.comment(": keep-alive\n")
		}
	}
}

// comment writes raw SSE lines (a comment or a field without data) and a
// blank line, and flushes.
func (s *sseReporter) comment(lines string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprint(s.w, lines+"\n")
	if s.f != nil {
		s.f.Flush()
	}
}
