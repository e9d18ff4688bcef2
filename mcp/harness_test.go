package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
)

// The two protocol eras aima serves: stateless, and initialize + sessions.
const (
	modern = "2026-07-28"
	legacy = "2025-11-25"
)

var eras = []string{modern, legacy}

// serveDaemon runs a real in-process daemon (daemontest: the daemon's own
// constructor and start-up, /mcp mounted by it) and returns its base URL.
// The image only matters to tests that start services.
func serveDaemon(t *testing.T, image string, readOnly bool, token string) string {
	t.Helper()
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Image: image})
	return daemontest.Start(t, cfg, daemontest.Options{ReadOnly: readOnly, Token: token}).URL
}

// recorder collects what a go-sdk client receives besides results.
type recorder struct {
	mu       sync.Mutex
	progress map[any][]*sdk.ProgressNotificationParams
	logs     []string
}

func newRecorder() *recorder { return &recorder{progress: map[any][]*sdk.ProgressNotificationParams{}} }

func (r *recorder) options() *sdk.ClientOptions {
	return &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.progress[req.Params.ProgressToken] = append(r.progress[req.Params.ProgressToken], req.Params)
		},
		LoggingMessageHandler: func(_ context.Context, req *sdk.LoggingMessageRequest) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.logs = append(r.logs, fmt.Sprint(req.Params.Data))
		},
	}
}

// messages returns the progress messages of token, ordered by progress.
func (r *recorder) messages(token string) []string {
	r.mu.Lock()
	ps := slices.Clone(r.progress[token])
	r.mu.Unlock()
	slices.SortFunc(ps, func(a, b *sdk.ProgressNotificationParams) int {
		switch {
		case a.Progress < b.Progress:
			return -1
		case a.Progress > b.Progress:
			return 1
		}
		return 0
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Message
	}
	return out
}

func (r *recorder) logCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.logs)
}

// waitFor polls cond until it holds or ctx ends (notifications may trail
// the result they belong to). state, if set, describes what was seen.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			seen := ""
			if state != nil {
				seen = "; seen:\n" + state()
			}
			t.Fatalf("gave up waiting for %s: %v%s", what, ctx.Err(), seen)
		case <-tick.C:
		}
	}
}

// connect opens a go-sdk client session pinned to protocol version and
// checks that the server agreed to it.
func connect(ctx context.Context, t *testing.T, tr sdk.Transport, version string, rec *recorder) *sdk.ClientSession {
	t.Helper()
	cl := sdk.NewClient(&sdk.Implementation{Name: "aima-test", Version: "1"}, rec.options())
	cs, err := cl.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect (%s): %v", version, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	if got := cs.InitializeResult().ProtocolVersion; got != version {
		t.Fatalf("negotiated protocol %q, want %q", got, version)
	}
	if version == legacy {
		if err := cs.SetLoggingLevel(ctx, &sdk.SetLoggingLevelParams{Level: "info"}); err != nil {
			t.Fatalf("logging/setLevel: %v", err)
		}
	}
	return cs
}

// call runs a tool that must succeed and returns its structuredContent.
func call(ctx context.Context, t *testing.T, cs *sdk.ClientSession, name string, args map[string]any) map[string]any {
	t.Helper()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args, Meta: sdk.Meta{sdk.MetaKeyLogLevel: "info"}})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: isError: %s", name, resultText(res))
	}
	obj, ok := res.StructuredContent.(map[string]any)
	if !ok {
		t.Fatalf("%s: structuredContent is %T, want an object", name, res.StructuredContent)
	}
	if resultText(res) == "" {
		t.Errorf("%s: no text content", name)
	}
	return obj
}

func resultText(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// field digs a value out of decoded JSON by path.
func field(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// assertInOrder checks that each want appears as a message prefix, with
// first appearances in the given order.
func assertInOrder(t *testing.T, msgs []string, want ...string) {
	t.Helper()
	next := 0
	for _, m := range msgs {
		if next < len(want) && strings.HasPrefix(m, want[next]) {
			next++
		}
	}
	if next < len(want) {
		b, _ := json.MarshalIndent(msgs, "", "  ")
		t.Fatalf("progress messages lack %q (after %q) in order:\n%s", want[next], want[:next], b)
	}
}

// cancelOnMessage returns a context that is cancelled as soon as a progress
// message of token satisfies match, to cancel a call midway.
func cancelOnMessage(ctx context.Context, rec *recorder, token string, match func(string) bool) (context.Context, context.CancelFunc) {
	callCtx, stop := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if slices.ContainsFunc(rec.messages(token), match) {
				stop()
				return
			}
			select {
			case <-callCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return callCtx, stop
}
