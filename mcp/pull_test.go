package mcp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/internal/testenv"
)

// TestHTTPPullProgress starts a service whose image must be pulled from a
// loopback registry, so the pull phase reports bytes per layer as progress.
func TestHTTPPullProgress(t *testing.T) {
	testenv.RequireDocker(t)
	reg := testenv.StartRegistry(t, testenv.WithBandwidth(8<<20))
	local := "aima-enginesim-padded:" + testenv.UniqueName(t)
	testenv.EngineSimImageWithPadding(t, local, 8<<20)
	ref := reg + "/aima/enginesim:mcp-pull"
	testenv.PushToRegistry(t, local, ref)
	testenv.RemoveImage(t, ref)
	testenv.RemoveImage(t, local)

	base := serveDaemon(t, ref, false, "")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rec := newRecorder()
	cs := httpSession(ctx, t, base, modern, rec)
	model := call(ctx, t, cs, "model_add", map[string]any{"path": testenv.MakeModel(t, "qwen-pull")})
	svc := call(ctx, t, cs, "service_create", map[string]any{"model_id": model["id"], "engine_type": "vllm"})
	id, _ := svc["id"].(string)
	t.Cleanup(func() { testenv.RemoveContainersWithLabel(t, "aima.service", id) })
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{
		Name:      "service_start",
		Arguments: map[string]any{"service_id": id, "wait": true, "timeout_seconds": 180},
		Meta:      sdk.Meta{"progressToken": "pull"},
	})
	if err != nil || res.IsError {
		t.Fatalf("service_start: %v %s", err, resultText(res))
	}
	msgs := rec.messages("pull")
	var bytesMsg, done bool
	for _, m := range msgs {
		bytesMsg = bytesMsg || (strings.HasPrefix(m, "pull: ") && strings.Contains(m, "Downloading") && strings.Contains(m, "iB/"))
		done = done || (strings.HasPrefix(m, "pull: ") && strings.Contains(m, "Pull complete"))
	}
	if !bytesMsg || !done {
		t.Errorf("pull progress: bytes=%v complete=%v in:\n%s", bytesMsg, done, strings.Join(msgs, "\n"))
	}
	assertInOrder(t, msgs, "cleanup:", "pull:", "create:", "start:", "loading:", "health_check:", "running")
}
