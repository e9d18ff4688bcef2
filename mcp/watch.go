package mcp

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"aima/errs"
	"aima/events"
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
// the end of its session or listen stream, the watcher's context, or the
// end of what it follows (the service was deleted): a watch that ends
// leaves the table, so dead watches never count against the limits.
// A subscription that cannot be served (not an aima resource, an unknown
// service or model, over the limits) is answered with a JSON-RPC error,
// never acknowledged and dropped.
type watcher struct {
	srv    *server.MCPServer
	caller tools.Caller
	base   context.Context
	log    *slog.Logger

	mu   sync.Mutex
	subs map[watchKey]*watch
}

type watchKey struct {
	session server.ClientSession
	uri     string
}

// watch is one entry of the table; its identity tells a watch that ends
// by itself from a newer one of the same key.
type watch struct{ cancel context.CancelFunc }

func newWatcher(base context.Context, caller tools.Caller, log *slog.Logger) *watcher {
	return &watcher{caller: caller, base: base, log: log, subs: map[watchKey]*watch{}}
}

// hooks connects the watcher to mcp-go's subscription requests.
// resources/subscribe is served from the request-initialization hook, the
// one hook whose error mcp-go sends back as the request's answer (a
// JSON-RPC error, code -32600, message "<kind>: <reason>"); mcp-go then
// acknowledges what the hook accepted.
func (w *watcher) hooks() *server.Hooks {
	h := &server.Hooks{}
	h.AddOnRequestInitialization(func(ctx context.Context, _ any, message any) error {
		raw, ok := message.(json.RawMessage)
		if !ok {
			return nil
		}
		return w.initRequest(ctx, raw)
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
			if err := w.add(ctx, s, uri, id); err != nil {
				w.log.Warn("MCP resource subscription refused", "uri", uri, "err", err)
			}
		}
	})
	h.AddAfterSubscriptionsListen(func(ctx context.Context, _ any, _ *mcpgo.SubscriptionsListenRequest, _ *mcpgo.SubscriptionsListenResult) {
		if s := server.ClientSessionFromContext(ctx); s != nil {
			w.removeSession(s)
		}
	})
	return h
}

// initRequest serves resources/subscribe (2025-11-25 and older): the
// resource must exist and the limits have room, else the subscription is
// refused with an error. For subscriptions/listen (2026-07-28) it checks
// the same of every URI listed; the listen's own hook then starts them.
// Any other request passes.
func (w *watcher) initRequest(ctx context.Context, raw json.RawMessage) error {
	var head struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(raw, &head) != nil {
		return nil
	}
	session := server.ClientSessionFromContext(ctx)
	switch mcpgo.MCPMethod(head.Method) {
	case mcpgo.MethodResourcesSubscribe:
		var req struct {
			Params struct {
				URI  string      `json:"uri"`
				Meta *mcpgo.Meta `json:"_meta"`
			} `json:"params"`
		}
		if json.Unmarshal(raw, &req) != nil || req.Params.URI == "" || session == nil ||
			mcpgo.IsModernProtocol(req.Params.Meta.ProtocolVersion()) {
			return nil // mcp-go answers these itself
		}
		if err := w.check(ctx, session, []string{req.Params.URI}); err != nil {
			return err
		}
		return w.add(w.base, session, req.Params.URI, nil)
	case mcpgo.MethodSubscriptionsListen:
		var req mcpgo.SubscriptionsListenRequest
		if json.Unmarshal(raw, &req) != nil || session == nil {
			return nil
		}
		return w.check(ctx, session, req.Params.Notifications.ResourceSubscriptions)
	}
	return nil
}

// check refuses a set of uris the limits have no room for (first: it
// costs nothing), and uris that are not aima resources or name no service
// or model.
func (w *watcher) check(ctx context.Context, session server.ClientSession, uris []string) error {
	if err := w.room(session, uris); err != nil {
		return err
	}
	for _, uri := range uris {
		ref, err := parseURI(uri)
		if err != nil {
			return protocolError(err)
		}
		switch ref.kind {
		case "model":
			err = call(ctx, w.caller, "model_get", tools.ModelRef{ModelID: ref.id}, nil, nil)
		default:
			err = call(ctx, w.caller, "service_status", tools.ServiceRef{ServiceID: ref.id}, nil, nil)
		}
		if err != nil {
			return protocolError(err)
		}
	}
	return nil
}

// room refuses uris when the session's new watches would not fit.
func (w *watcher) room(session server.ClientSession, uris []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	fresh := map[string]bool{}
	for _, uri := range uris {
		if _, ok := w.subs[watchKey{session, uri}]; !ok {
			fresh[uri] = true
		}
	}
	return w.roomLocked(session, len(fresh))
}

// roomLocked refuses n more watches of session past the limits.
func (w *watcher) roomLocked(session server.ClientSession, n int) error {
	mine := 0
	for k := range w.subs {
		if k.session == session {
			mine++
		}
	}
	if mine+n > maxWatchesPerSession || len(w.subs)+n > maxWatches {
		return protocolError(errs.New(errs.Unavailable, "too many resource subscriptions (%d of this session's %d, %d of the daemon's %d): unsubscribe from some first",
			mine, maxWatchesPerSession, len(w.subs), maxWatches))
	}
	return nil
}

// add starts watching uri for session (listenID: the subscriptions/listen
// request's id, nil for resources/subscribe). A second subscription to the
// same URI is the first one.
func (w *watcher) add(parent context.Context, session server.ClientSession, uri string, listenID any) error {
	ref, err := parseURI(uri)
	if err != nil {
		return protocolError(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	key := watchKey{session, uri}
	if _, ok := w.subs[key]; ok {
		return nil
	}
	if err := w.roomLocked(session, 1); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(parent)
	wt := &watch{cancel: cancel}
	w.subs[key] = wt
	go func() {
		defer w.ended(key, wt)
		defer func() {
			if p := recover(); p != nil {
				w.log.Error("MCP resource watch panicked", "uri", uri, "panic", p)
			}
		}()
		w.follow(ctx, ref, func() { w.send(session, uri, listenID) })
	}()
	return nil
}

// ended removes a watch whose follow returned, unless a newer watch of
// the same key replaced it meanwhile.
func (w *watcher) ended(key watchKey, wt *watch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt.cancel()
	if w.subs[key] == wt {
		delete(w.subs, key)
	}
}

func (w *watcher) remove(session server.ClientSession, uri string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := watchKey{session, uri}
	if wt, ok := w.subs[key]; ok {
		wt.cancel()
		delete(w.subs, key)
	}
}

func (w *watcher) removeSession(session server.ClientSession) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, wt := range w.subs {
		if k.session == session {
			wt.cancel()
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
// until ctx ends or the service is gone (deleted, or never existed), which
// it tells with a last notify so a subscriber reads the resource again
// and learns it is gone. A model resource has no events to follow.
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
			err := call(ctx, w.caller, "service_events", tools.ServiceEventsInput{ServiceID: ref.id, Follow: true, After: cursor}, nil, rep)
			rep.mu.Lock()
			cursor = rep.cursor
			told := rep.deleted
			rep.mu.Unlock()
			if errs.Is(err, errs.NotFound) {
				if !told {
					notify()
				}
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(rewatchDelay):
		}
	}
}

// statusReporter is the tools.Reporter of a followed event stream.
type statusReporter struct {
	mu      sync.Mutex
	cursor  uint64
	deleted bool // the deleted event came (and was notified)
	notify  func()
}

// Event implements tools.Reporter.
func (r *statusReporter) Event(ev events.Event) {
	r.mu.Lock()
	if ev.Seq > r.cursor {
		r.cursor = ev.Seq
	}
	if ev.Type == events.TypeDeleted {
		r.deleted = true
	}
	r.mu.Unlock()
	if ev.Type == events.TypeStatus || ev.Type == events.TypeDeleted {
		r.notify()
	}
}

// Log implements tools.Reporter.
func (r *statusReporter) Log(tools.LogLine) {}

// Delta implements tools.Reporter.
func (r *statusReporter) Delta(tools.ChatDelta) {}
