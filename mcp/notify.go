package mcp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"aima/events"
	"aima/tools"
)

const (
	// pullGap is the minimum gap between byte updates of one image layer;
	// a layer's status changes and completion always go out.
	pullGap = 200 * time.Millisecond
	// settleDelay separates the last notification from the result. mcp-go
	// v1.2.1 can drop (HTTP: its forwarder loses a notification to the
	// response path) or reorder (stdio: responses and notifications are
	// written by two goroutines) notifications sent just before a handler
	// returns (docs/decisions.md, "MCP"); a short pause avoids both.
	settleDelay = 20 * time.Millisecond
	// loggerName names aima in notifications/message.
	loggerName = "aima"
	// maxBlock and retryEvery bound the wait for room in a full
	// notification queue (see deliver).
	maxBlock   = 2 * time.Second
	retryEvery = 2 * time.Millisecond
)

// notifier is the tools.Reporter of one tool call. It sends
// notifications/progress when the request carried a progressToken (progress
// is a counter, so it strictly increases per token as MCP requires), and
// notifications/message at level info, which mcp-go forwards only when the
// client asked for logs (logging/setLevel before 2026-07-28, the request's
// _meta log level from then on).
//
// Concurrency: Event and Log may be called from any goroutine; after finish
// they are no-ops, so a late report never reaches a finished request.
type notifier struct {
	ctx   context.Context
	srv   *server.MCPServer
	token mcpgo.ProgressToken

	mu       sync.Mutex
	count    int
	lastSent time.Time
	layers   map[string]layerState
	done     bool
}

// layerState is what was last sent about one image layer.
type layerState struct {
	at     time.Time
	status string
}

func newNotifier(ctx context.Context, srv *server.MCPServer, token mcpgo.ProgressToken) *notifier {
	return &notifier{ctx: ctx, srv: srv, token: token, layers: map[string]layerState{}}
}

// Event implements tools.Reporter.
func (n *notifier) Event(ev events.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done || n.srv == nil {
		return
	}
	if ev.Type == events.TypeProgress && !n.pullDue(ev, time.Now()) {
		return
	}
	n.send(eventText(ev))
}

// Log implements tools.Reporter: service_logs with follow streams lines.
func (n *notifier) Log(l tools.LogLine) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done || n.srv == nil {
		return
	}
	n.send(l.Text)
}

// Delta implements tools.Reporter: inference_chat streams its answer's
// pieces as they arrive (the result holds the whole answer).
func (n *notifier) Delta(d tools.ChatDelta) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done || n.srv == nil {
		return
	}
	n.send(d.Text)
}

// send emits one progress and one log notification. The caller holds mu.
func (n *notifier) send(msg string) {
	if n.token != nil {
		n.count++
		params := map[string]any{"progressToken": n.token, "progress": n.count, "message": msg}
		if n.deliver(func() error {
			return n.srv.SendNotificationToClient(n.ctx, string(mcpgo.MethodNotificationProgress), params)
		}) == nil {
			n.lastSent = time.Now()
		}
	}
	log := mcpgo.NewLoggingMessageNotification(mcpgo.LoggingLevelInfo, loggerName, msg)
	if n.deliver(func() error { return n.srv.SendLogMessageToClient(n.ctx, log) }) == nil {
		n.lastSent = time.Now() // it may have been filtered; pausing anyway is cheap
	}
}

// deliver sends one notification. mcp-go queues at most 100 per session and
// drops when the queue is full, which a burst (service_logs with follow
// replays 200 lines at once) overflows. So a full queue is retried for up to
// maxBlock, holding the operation back instead of losing lines; only a
// client that stopped reading loses notifications, never the result.
func (n *notifier) deliver(send func() error) error {
	err := send()
	if !errors.Is(err, server.ErrNotificationChannelBlocked) {
		return err
	}
	giveUp := time.NewTimer(maxBlock)
	defer giveUp.Stop()
	retry := time.NewTicker(retryEvery)
	defer retry.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return n.ctx.Err()
		case <-giveUp.C:
			return err
		case <-retry.C:
			if err = send(); !errors.Is(err, server.ErrNotificationChannelBlocked) {
				return err
			}
		}
	}
}

// pullDue throttles byte progress per layer: the first update, a change
// of the layer's status (Downloading → Extracting → Pull complete), its
// completion, and otherwise one update per pullGap. The caller holds mu.
func (n *notifier) pullDue(ev events.Event, now time.Time) bool {
	status := pullStatus(ev)
	last, seen := n.layers[ev.Layer]
	complete := ev.Total > 0 && ev.Current >= ev.Total
	if seen && last.status == status && !complete && now.Sub(last.at) < pullGap {
		return false
	}
	n.layers[ev.Layer] = layerState{at: now, status: status}
	return true
}

// pullStatus is the first word of the Docker pull status in a progress
// message ("<layer>: Downloading 3.2 MiB/20.0 MiB" → "Downloading").
func pullStatus(ev events.Event) string {
	msg := strings.TrimPrefix(ev.Message, ev.Layer+": ")
	word, _, _ := strings.Cut(msg, " ")
	return word
}

// finish ends reporting and, if a notification went out moments ago, waits
// settleDelay after it so that the transport delivers it before the result.
func (n *notifier) finish(ctx context.Context) {
	n.mu.Lock()
	n.done = true
	last := n.lastSent
	n.mu.Unlock()
	if last.IsZero() {
		return
	}
	wait := settleDelay - time.Since(last)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// eventText renders an event as one human line: "<phase>: <message>" for
// phases, milestones and pull bytes ("pull: sha256:ab.. Downloading 3.2
// MiB/20.0 MiB", "loading: weights loaded in 5.4 s"), and the new status
// for status changes ("running", "failed: <reason>").
func eventText(ev events.Event) string {
	if ev.Type == events.TypeStatus {
		// Status messages read "from → to" or "from → to: reason".
		if _, reason, ok := strings.Cut(ev.Message, ": "); ok && reason != "" {
			return ev.Status + ": " + reason
		}
		return ev.Status
	}
	if ev.Phase == "" {
		return ev.Message
	}
	return ev.Phase + ": " + ev.Message
}
