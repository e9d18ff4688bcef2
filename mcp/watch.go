package mcp

import (
	"context"
	"log/slog"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"aima/errs"
	"aima/events"
	"aima/runtime"
	"aima/tools"
)

// Subscription limits: a watch is one event stream on the daemon.
const (
	maxWatchesPerSession = 64
	maxWatches           = 1024
	// rewatchDelay is the pause before a broken event stream is followed
	// again (the daemon restarted, a relay's connection dropped).
	rewatchDelay = time.Second
)

// watcher serves resource subscriptions: for each subscribed aima://services
// URI it follows the service's events through the caller (service_events
// with follow: in the daemon the event bus itself, in `aima mcp` the
// daemon's event stream) and sends notifications/resources/updated on every
// status change. mcp-go v1.2.1 acknowledges subscriptions but delivers no
// updates itself, so the watcher hooks into both eras' ways to subscribe:
// resources/subscribe and resources/unsubscribe (2025-11-25 and older, per
// session) and subscriptions/listen (2026-07-28, one stream per listen
// request, whose notifications carry its subscription id).
//
// Every watch is a goroutine owned by the watcher, ended by unsubscribe,
// the end of its session or listen stream, or the watcher's context.
type watcher struct {
	srv    *server.MCPServer
	caller tools.Caller
	base   context.Context
	log    *slog.Logger

	mu   sync.Mutex
	subs map[watchKey]context.CancelFunc
}

type watchKey struct {
	session server.ClientSession
	uri     string
}

func newWatcher(base context.Context, caller tools.Caller, log *slog.Logger) *watcher {
	return &watcher{caller: caller, base: base, log: log, subs: map[watchKey]context.CancelFunc{}}
}

// hooks connects the watcher to mcp-go's subscription requests.
func (w *watcher) hooks() *server.Hooks {
	h := &server.Hooks{}
	h.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcpgo.SubscribeRequest, _ *mcpgo.EmptyResult) {
		if s := server.ClientSessionFromContext(ctx); s != nil {
			w.add(w.base, s, req.Params.URI, nil)
		}
	})
	h.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcpgo.UnsubscribeRequest, _ *mcpgo.EmptyResult) {
		if s := server.ClientSessionFromContext(ctx); s != nil {
			w.remove(s, req.Params.URI)
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) { w.removeSession(s) })
	// A listen stream lasts as long as its request: its watches run under
	// the request's context and end with it.
	h.AddBeforeSubscriptionsListen(func(ctx context.Context, id any, req *mcpgo.SubscriptionsListenRequest) {
		s := server.ClientSessionFromContext(ctx)
		if s == nil || id == nil {
			return
		}
		for _, uri := range req.Params.Notifications.ResourceSubscriptions {
			w.add(ctx, s, uri, id)
		}
	})
	h.AddAfterSubscriptionsListen(func(ctx context.Context, _ any, _ *mcpgo.SubscriptionsListenRequest, _ *mcpgo.SubscriptionsListenResult) {
		if s := server.ClientSessionFromContext(ctx); s != nil {
			w.removeSession(s)
		}
	})
	return h
}

// add starts watching uri for session (listenID: the subscriptions/listen
// request's id, nil for resources/subscribe). A URI that is not an aima
// resource, a second subscription to the same URI, and subscriptions past
// the limits are ignored.
func (w *watcher) add(parent context.Context, session server.ClientSession, uri string, listenID any) {
	ref, err := parseURI(uri)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	key := watchKey{session, uri}
	if _, ok := w.subs[key]; ok {
		return
	}
	n := 0
	for k := range w.subs {
		if k.session == session {
			n++
		}
	}
	if n >= maxWatchesPerSession || len(w.subs) >= maxWatches {
		w.log.Warn("MCP resource subscription refused: too many", "uri", uri, "session_watches", n, "watches", len(w.subs))
		return
	}
	ctx, cancel := context.WithCancel(parent)
	w.subs[key] = cancel
	go w.follow(ctx, ref, func() { w.send(session, uri, listenID) })
}

func (w *watcher) remove(session server.ClientSession, uri string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := watchKey{session, uri}
	if cancel, ok := w.subs[key]; ok {
		cancel()
		delete(w.subs, key)
	}
}

func (w *watcher) removeSession(session server.ClientSession) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, cancel := range w.subs {
		if k.session == session {
			cancel()
			delete(w.subs, k)
		}
	}
}

// send delivers notifications/resources/updated for uri to the session.
func (w *watcher) send(session server.ClientSession, uri string, listenID any) {
	params := map[string]any{"uri": uri}
	if listenID == nil {
		// A 2025-11-25 session: mcp-go routes it (the standalone stream
		// over HTTP, stdout on stdio).
		if err := w.srv.SendNotificationToSpecificClient(session.SessionID(), mcpgo.MethodNotificationResourceUpdated, params); err != nil {
			w.log.Debug("MCP resource update not sent", "uri", uri, "err", err)
		}
		return
	}
	n := mcpgo.JSONRPCNotification{JSONRPC: mcpgo.JSONRPC_VERSION, Notification: mcpgo.Notification{
		Method: mcpgo.MethodNotificationResourceUpdated,
		Params: mcpgo.NotificationParams{Meta: map[string]any{mcpgo.MetaKeySubscriptionID: listenID}, AdditionalFields: params},
	}}
	select {
	case session.NotificationChannel() <- n:
	case <-time.After(maxBlock):
		w.log.Debug("MCP resource update dropped: the listen stream is not reading", "uri", uri)
	}
}

// follow calls notify on every status change of the service ref names,
// until ctx ends. A model resource has no events to follow.
func (w *watcher) follow(ctx context.Context, ref resourceRef, notify func()) {
	if ref.kind == "model" {
		<-ctx.Done()
		return
	}
	var cursor uint64
	started := false
	for ctx.Err() == nil {
		if !started {
			// Only changes from now on: start after the newest event.
			var hist tools.EventsOutput
			err := call(ctx, w.caller, "service_events", tools.ServiceEventsInput{ServiceID: ref.id}, &hist, nil)
			switch {
			case errs.Is(err, errs.NotFound) || errs.Is(err, errs.InvalidArgument):
				return // no such service: nothing will ever change
			case err == nil:
				if n := len(hist.Items); n > 0 {
					cursor = hist.Items[n-1].Seq
				}
				started = true
			}
		}
		if started {
			rep := &statusReporter{cursor: cursor, notify: notify}
			_ = call(ctx, w.caller, "service_events", tools.ServiceEventsInput{ServiceID: ref.id, Follow: true, After: cursor}, nil, rep)
			rep.mu.Lock()
			cursor = rep.cursor
			rep.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(rewatchDelay):
		}
	}
}

// statusReporter is the tools.Reporter of a followed event stream.
type statusReporter struct {
	mu     sync.Mutex
	cursor uint64
	notify func()
}

// Event implements tools.Reporter.
func (r *statusReporter) Event(ev events.Event) {
	r.mu.Lock()
	if ev.Seq > r.cursor {
		r.cursor = ev.Seq
	}
	r.mu.Unlock()
	if ev.Type == events.TypeStatus {
		r.notify()
	}
}

// Log implements tools.Reporter.
func (r *statusReporter) Log(runtime.LogLine) {}
