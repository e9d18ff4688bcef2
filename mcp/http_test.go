package mcp_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/internal/testenv"
	"aima/mcp"
	"aima/tools"
)

// httpSession connects the official go-sdk client to the daemon's /mcp.
func httpSession(ctx context.Context, t *testing.T, base, version string, rec *recorder) *sdk.ClientSession {
	t.Helper()
	tr := &sdk.StreamableClientTransport{Endpoint: base + mcp.Path, MaxRetries: -1}
	cs := connect(ctx, t, tr, version, rec)
	if version == legacy && cs.ID() == "" {
		t.Errorf("%s session has no Mcp-Session-Id", version)
	}
	return cs
}

// checkToolList asserts that the listed tools are exactly the visible
// operations, with their annotations and object schemas.
func checkToolList(ctx context.Context, t *testing.T, cs *sdk.ClientSession, readOnly bool) {
	t.Helper()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]*sdk.Tool{}
	for _, tool := range res.Tools {
		listed[tool.Name] = tool
	}
	want := tools.Visible(readOnly)
	if len(listed) != len(want) {
		t.Errorf("listed %d tools, want %d", len(listed), len(want))
	}
	for _, op := range want {
		tool, ok := listed[op.Name()]
		if !ok {
			t.Errorf("tool %s missing", op.Name())
			continue
		}
		a := op.Annotations()
		an := tool.Annotations
		if an == nil || an.ReadOnlyHint != a.ReadOnly || an.IdempotentHint != a.Idempotent ||
			an.DestructiveHint == nil || *an.DestructiveHint != a.Destructive || an.OpenWorldHint == nil || *an.OpenWorldHint {
			t.Errorf("%s: annotations %+v, want %+v and openWorld false", op.Name(), an, a)
		}
		if tool.Description != op.Description() {
			t.Errorf("%s: description differs from the registry", op.Name())
		}
		if typ := field(tool.InputSchema, "type"); typ != "object" {
			t.Errorf("%s: input schema type %v", op.Name(), typ)
		}
		if typ := field(tool.OutputSchema, "type"); typ != "object" {
			t.Errorf("%s: output schema type %v", op.Name(), typ)
		}
	}
}

// TestHTTPToolsAndErrors needs no Docker: listing, a store-only read, and
// how failures look, in both protocol eras.
func TestHTTPToolsAndErrors(t *testing.T) {
	base := serveDaemon(t, testenv.EngineSimRef, false, "")
	// 2025-06-18 stands for the older revisions, served like 2025-11-25.
	for _, version := range append(slices.Clone(eras), "2025-06-18") {
		t.Run(version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cs := httpSession(ctx, t, base, version, newRecorder())
			checkToolList(ctx, t, cs, false)

			if got := call(ctx, t, cs, "model_list", nil); field(got, "total") != float64(0) {
				t.Errorf("model_list on an empty daemon: %v", got)
			}
			if got := call(ctx, t, cs, "engine_list", map[string]any{}); field(got, "total") == float64(0) {
				t.Errorf("engine_list is empty: %v", got)
			}

			cases := []struct {
				name, tool string
				args       any
				kind       string
				field      string
			}{
				{"unknown service", "service_status", map[string]any{"service_id": "svc-nope"}, "not_found", ""},
				{"missing field", "service_status", map[string]any{}, "invalid_argument", "service_id"},
				{"unknown field", "model_list", map[string]any{"bogus": 1}, "invalid_argument", "bogus"},
				{"wrong type", "service_create", map[string]any{"model_id": 7, "engine_type": "vllm"}, "invalid_argument", "model_id"},
				{"array arguments", "model_list", []any{1, 2}, "invalid_argument", ""},
			}
			for _, tc := range cases {
				res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tc.tool, Arguments: tc.args})
				if err != nil {
					t.Errorf("%s: protocol error %v, want an isError result", tc.name, err)
					continue
				}
				text := resultText(res)
				if !res.IsError || len(text) < len(tc.kind) || text[:len(tc.kind)+1] != tc.kind+":" {
					t.Errorf("%s: isError=%v text %q, want %q prefix", tc.name, res.IsError, text, tc.kind+":")
				}
				detail := res.Meta[mcp.MetaError]
				if field(detail, "code") != tc.kind || field(detail, "message") == "" {
					t.Errorf("%s: _meta %v", tc.name, res.Meta)
				}
				if tc.field != "" && field(detail, "field") != tc.field {
					t.Errorf("%s: field %v, want %s", tc.name, field(detail, "field"), tc.field)
				}
			}
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "no_such_tool"}); err == nil {
				t.Error("unknown tool: want a protocol error")
			}
		})
	}
}

// TestHTTPReadOnly: a read-only daemon lists no mutating tool and refuses
// to call one.
func TestHTTPReadOnly(t *testing.T) {
	base := serveDaemon(t, testenv.EngineSimRef, true, "")
	for _, version := range eras {
		t.Run(version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cs := httpSession(ctx, t, base, version, newRecorder())
			checkToolList(ctx, t, cs, true)
			res, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tool := range res.Tools {
				if tool.Annotations == nil || !tool.Annotations.ReadOnlyHint {
					t.Errorf("read-only mode lists %s", tool.Name)
				}
			}
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "service_create", Arguments: map[string]any{"model_id": "m", "engine_type": "vllm"}}); err == nil {
				t.Error("service_create in read-only mode: want a protocol error (no such tool)")
			}
		})
	}
}

// TestHTTPServiceLifecycle drives a real start of the engine simulator in
// Docker through /mcp, once per protocol era.
func TestHTTPServiceLifecycle(t *testing.T) {
	eachEraWithDocker(t, "qwen-tiny", lifecycle)
}

// eachEraWithDocker serves an in-process daemon whose vllm is the engine
// simulator in Docker and runs body once per protocol era, as a subtest
// with a go-sdk session over HTTP, a 5-minute deadline and a model
// directory named model (shared by the eras).
func eachEraWithDocker(t *testing.T, model string, body func(ctx context.Context, t *testing.T, cs *sdk.ClientSession, rec *recorder, modelDir string)) {
	t.Helper()
	testenv.RequireDocker(t)
	base := serveDaemon(t, testenv.EngineSimImage(t), false, "")
	modelDir := testenv.MakeModel(t, model)
	for _, version := range eras {
		t.Run(version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			rec := newRecorder()
			body(ctx, t, httpSession(ctx, t, base, version, rec), rec, modelDir)
		})
	}
}

// lifecycle registers a model, creates and starts a service with progress,
// and reads it back through every read-only service tool.
func lifecycle(ctx context.Context, t *testing.T, cs *sdk.ClientSession, rec *recorder, modelDir string) {
	t.Helper()
	model := call(ctx, t, cs, "model_add", map[string]any{"path": modelDir})
	modelID, _ := model["id"].(string)
	if modelID == "" {
		t.Fatalf("model_add: %v", model)
	}
	svc := call(ctx, t, cs, "service_create", map[string]any{"model_id": modelID, "engine_type": "vllm"})
	id, _ := svc["id"].(string)
	if id == "" {
		t.Fatalf("service_create: %v", svc)
	}
	t.Cleanup(func() { testenv.RemoveContainersWithLabel(t, "aima.service", id) })

	token := "start-" + id
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{
		Name:      "service_start",
		Arguments: map[string]any{"service_id": id, "wait": true, "timeout_seconds": 120},
		Meta:      sdk.Meta{"progressToken": token, sdk.MetaKeyLogLevel: "info"},
	})
	if err != nil {
		t.Fatalf("service_start: %v", err)
	}
	if res.IsError {
		t.Fatalf("service_start failed: %s", resultText(res))
	}
	if st := field(res.StructuredContent, "service", "status"); st != "running" {
		t.Fatalf("service_start result status %v, want running", st)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	waitFor(wctx, t, "the final progress notification", func() bool {
		msgs := rec.messages(token)
		return len(msgs) > 0 && strings.HasPrefix(msgs[len(msgs)-1], "running")
	}, func() string { return strings.Join(rec.messages(token), "\n") })
	msgs := rec.messages(token)
	assertInOrder(t, msgs, "cleanup:", "pull:", "create:", "start:", "loading:", "health_check:", "running")
	finals := 0
	for _, m := range msgs {
		if strings.HasPrefix(m, "running") {
			finals++
		}
	}
	if finals != 1 {
		t.Errorf("%d final running messages, want 1", finals)
	}
	if rec.logCount() == 0 {
		t.Error("no notifications/message although the client asked for info logs")
	}

	for _, name := range []string{"service_list", "health_check"} {
		call(ctx, t, cs, name, nil)
	}
	if st := call(ctx, t, cs, "service_status", map[string]any{"service_id": id}); st["status"] != "running" {
		t.Errorf("service_status: %v", st)
	}
	if logs := call(ctx, t, cs, "service_logs", map[string]any{"service_id": id}); field(logs, "total") == float64(0) {
		t.Errorf("service_logs has no lines: %v", logs)
	}
	if evs := call(ctx, t, cs, "service_events", map[string]any{"service_id": id}); field(evs, "total") == float64(0) {
		t.Errorf("service_events is empty: %v", evs)
	}

	// Following logs streams them as notifications until the call is cancelled.
	logsCtx, stop := cancelOnMessage(ctx, rec, "logs", func(m string) bool { return strings.Contains(m, "Application startup complete") })
	defer stop()
	if _, err := cs.CallTool(logsCtx, &sdk.CallToolParams{
		Name:      "service_logs",
		Arguments: map[string]any{"service_id": id, "follow": true},
		Meta:      sdk.Meta{"progressToken": "logs", sdk.MetaKeyLogLevel: "info"},
	}); err == nil {
		t.Error("service_logs with follow ended by itself")
	}
	call(ctx, t, cs, "service_stop", map[string]any{"service_id": id})
}

// TestHTTPCancelKeepsStart: cancelling a service_start call with wait=true
// ends the call (the following), not the start, which belongs to the
// daemon and still reaches running.
func TestHTTPCancelKeepsStart(t *testing.T) {
	eachEraWithDocker(t, "qwen-cancel", func(ctx context.Context, t *testing.T, cs *sdk.ClientSession, rec *recorder, modelDir string) {
		model := call(ctx, t, cs, "model_add", map[string]any{"path": modelDir})
		svc := call(ctx, t, cs, "service_create", map[string]any{"model_id": model["id"], "engine_type": "vllm"})
		id, _ := svc["id"].(string)
		t.Cleanup(func() { testenv.RemoveContainersWithLabel(t, "aima.service", id) })

		// Cancel as soon as the container is being created.
		callCtx, stop := cancelOnMessage(ctx, rec, "c", func(m string) bool { return strings.HasPrefix(m, "create:") })
		defer stop()
		_, err := cs.CallTool(callCtx, &sdk.CallToolParams{
			Name:      "service_start",
			Arguments: map[string]any{"service_id": id, "wait": true},
			Meta:      sdk.Meta{"progressToken": "c"},
		})
		if err == nil {
			t.Fatal("the cancelled call returned a result")
		}
		got := call(ctx, t, cs, "service_wait", map[string]any{"service_id": id, "for": "running", "timeout_seconds": 120})
		if got["status"] != "running" {
			t.Fatalf("after the cancelled call the start ended as %v", got["status"])
		}
	})
}
