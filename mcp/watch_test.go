package mcp_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/internal/testenv"
	"aima/mcp"
)

// Subscriptions that cannot be served are refused with a JSON-RPC error
// (before, every one was answered {} and the refused ones were dropped,
// "too many watches" in the log only), and a watch whose service is
// deleted ends and frees its place: a session that subscribed to its
// limit of 64 services and saw them deleted can subscribe again and hears
// of the new service's changes. The deletion itself is notified.
func TestSubscriptionsRefusedOrFreed(t *testing.T) {
	url := fakeDaemonURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	up := &updates{}
	rec := newRecorder()
	opts := rec.options()
	opts.ResourceUpdatedHandler = up.handler
	cl := sdk.NewClient(&sdk.Implementation{Name: "aima-test", Version: "1"}, opts)
	cs, err := cl.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: url + mcp.Path, MaxRetries: -1}, &sdk.ClientSessionOptions{ProtocolVersion: legacy})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	for uri, want := range map[string]string{
		"aima://services/svc-00000000":      "not_found",
		"aima://services/svc-00000000/logs": "not_found",
		"aima://models/nope":                "not_found",
		"file:///etc/passwd":                "invalid_argument",
	} {
		if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: uri}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("subscribe %s: %v, want a JSON-RPC error with %s", uri, err, want)
		}
	}

	modelID := call(ctx, t, cs, "model_add", map[string]any{"path": testenv.MakeModel(t, "qwen-subs")})["id"].(string)
	newService := func(i int) string {
		return call(ctx, t, cs, "service_create", map[string]any{"model_id": modelID, "engine_type": "vllm", "name": fmt.Sprintf("subs-%d", i)})["id"].(string)
	}
	const limit = 64 // per session
	var ids []string
	for i := range limit + 1 {
		ids = append(ids, newService(i))
	}
	for _, id := range ids[:limit] {
		if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: "aima://services/" + id}); err != nil {
			t.Fatalf("subscribe %s: %v", id, err)
		}
	}
	last := "aima://services/" + ids[limit]
	if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: last}); err == nil || !strings.Contains(err.Error(), "too many resource subscriptions") {
		t.Fatalf("subscription %d of one session: %v, want a refusal", limit+1, err)
	}
	t0 := time.Now()
	for _, id := range ids[:limit] {
		call(ctx, t, cs, "service_delete", map[string]any{"service_id": id})
	}
	first := "aima://services/" + ids[0]
	waitFor(ctx, t, "the update that tells "+first+" was deleted", func() bool { _, ok := up.after(first, t0); return ok }, nil)
	// The deleted services' watches are gone: there is room again.
	waitFor(ctx, t, "room for a subscription after the deletions", func() bool {
		return cs.Subscribe(ctx, &sdk.SubscribeParams{URI: last}) == nil
	}, nil)
	t1 := time.Now()
	call(ctx, t, cs, "service_start", map[string]any{"service_id": ids[limit]})
	waitFor(ctx, t, "notifications/resources/updated for "+last, func() bool { _, ok := up.after(last, t1); return ok }, nil)
}
