package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"aima/events"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/services"
)

// hostileGW is a daemon whose vllm engine is the hostile engine
// (internal/testenv/hostile): each request's message is the script of what
// the engine answers. It returns the gateway and a running service of
// model "hostile".
func hostileGW(t *testing.T) (*gw, services.Service) {
	t.Helper()
	testenv.RequireDocker(t)
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Image: testenv.HostileEngineImage(t)})
	d := daemontest.Start(t, cfg, daemontest.Options{})
	g := &gw{Daemon: d, ai: openai.NewClient(option.WithBaseURL(d.URL+"/v1/"), option.WithAPIKey("sk-unused"), option.WithMaxRetries(0))}
	s := g.service(t, services.CreateSpec{ModelID: g.model(t, "hostile")})
	return g, g.start(t, s.ID)
}

// script sends a chat request whose message is the hostile engine's script
// and returns the HTTP status, the body as far as it came, and the error
// that ended the exchange (nil: the body ended as a body ends).
func (g *gw) script(t *testing.T, script string, stream bool) (int, string, error) {
	t.Helper()
	body := `{"model":"hostile","stream":` + map[bool]string{true: "true", false: "false"}[stream] +
		`,"messages":[{"role":"user","content":"` + script + `"}]}`
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err // cut before the status line
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// mark is where the service's events stand, for requestAfter.
func (g *gw) mark(id string) uint64 { return g.Domain.Services.Bus().LastSeq(id) }

// requestAfter waits for the service's first request record after mark:
// a request leaves the in-flight count a moment before its record is
// published.
func (g *gw) requestAfter(t *testing.T, id string, mark uint64) events.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sub := g.Domain.Services.Bus().Subscribe(id, mark)
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("no request event for %s: %v", id, err)
		}
		if ev.Type == events.TypeRequest && ev.Request != nil {
			return *ev.Request
		}
	}
}

// TestHostileEngine: what a hostile engine sends cannot wedge a service,
// make the gateway buffer without bound, or pass for a whole answer.
func TestHostileEngine(t *testing.T) {
	g, s := hostileGW(t)

	t.Run("impossible usage is ignored and noted, and the service stays controllable", func(t *testing.T) {
		for _, usage := range []string{"usage:9223372036854775807:-5", "usage:1e300:2", "usage:3.5:2", `usage:\"x\":1`} {
			mark := g.mark(s.ID)
			if code, body, err := g.script(t, "chunks:3 "+usage+" done", true); code != 200 || err != nil || !strings.Contains(body, "[DONE]") {
				t.Fatalf("%s: HTTP %d, %v: %.200s", usage, code, err, body)
			}
			r := g.requestAfter(t, s.ID, mark)
			if r.TokensIn != 0 || r.TokensOut != 3 || !strings.Contains(r.Note, "usage ignored") {
				t.Fatalf("%s: recorded %d→%d tokens, note %q; want the engine's counts ignored (0 in, 3 chunks out) and noted", usage, r.TokensIn, r.TokensOut, r.Note)
			}
		}
		if tr := g.settled(t, s.ID).Traffic; tr == nil || tr.TokensIn < 0 || tr.TokensOut < 0 {
			t.Fatalf("service figures %+v", tr)
		}
		// The wedge this once caused: the next request, a stop and a
		// delete hung for good. A deadlock has no other symptom than
		// time, hence the (generous) bound.
		mark := g.mark(s.ID)
		if code, _, err := g.script(t, "chunks:1 usage:2:1 done", true); code != 200 || err != nil {
			t.Fatalf("the next request: HTTP %d, %v", code, err)
		}
		if r := g.requestAfter(t, s.ID, mark); r.TokensIn != 2 || r.TokensOut != 1 || r.Note != "" {
			t.Fatalf("valid usage recorded as %+v", r)
		}
	})

	t.Run("an event without end is cut with a reason", func(t *testing.T) {
		mark := g.mark(s.ID)
		code, body, err := g.script(t, "chunks:2 noline:9437184 done", true)
		if code != 200 || err == nil || !strings.Contains(body, `"engine_event_too_large"`) || len(body) > 1<<20 {
			t.Fatalf("HTTP %d, read error %v, %d bytes (%.300s); want the error event and a cut connection, never the 9 MiB", code, err, len(body), body)
		}
		if r := g.requestAfter(t, s.ID, mark); !strings.Contains(r.Error, "MiB without ending it") {
			t.Fatalf("request recorded with error %q", r.Error)
		}
	})

	t.Run("an engine dying mid-stream is an error to the OpenAI SDK", func(t *testing.T) {
		stream := g.ai.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
			Model: "hostile", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("chunks:300 die")},
		})
		chunks := 0
		for stream.Next() {
			chunks++
		}
		if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "engine_disconnected") {
			t.Fatalf("after %d chunks the stream ended with %v; want the engine's death as an error", chunks, err)
		}
		if _, _, err := g.script(t, "chunks:300 die", true); err == nil {
			t.Fatal("a plain HTTP client read the broken stream to a clean end")
		}
	})

	t.Run("a stream without [DONE] is not a whole answer", func(t *testing.T) {
		stream := g.ai.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
			Model: "hostile", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("chunks:5")},
		})
		for stream.Next() {
		}
		if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "engine_stream_unfinished") {
			t.Fatalf("stream ended with %v", err)
		}
	})

	t.Run("an engine dying mid-body is a truncated transfer", func(t *testing.T) {
		code, body, err := g.script(t, "die", false)
		if err == nil {
			t.Fatalf("HTTP %d, %q read to a clean end; want a cut connection", code, body)
		}
		if _, err := g.chat(t.Context(), "hostile", "die"); err == nil {
			t.Fatal("the OpenAI SDK took half a body for an answer")
		}
	})

	t.Run("the service still stops", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { _, err := g.Domain.Services.Stop(context.Background(), s.ID); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("service stop hangs: the service is wedged")
		}
	})
}

// TestSimulatorCrashMidStream is the reproduction with the simulator
// itself: vLLM's engine dies (SIM_FAIL=crash-after, ten seconds after the
// service is ready) while a 300-token stream (30 s at 100 ms a token) is
// under way. The official SDK's stream must end with an error, not as a
// finished answer.
func TestSimulatorCrashMidStream(t *testing.T) {
	g := newGW(t, "")
	s := g.service(t, services.CreateSpec{ModelID: g.model(t, "qcrash"),
		Env: []string{"SIM_FAIL=crash-after", "SIM_FAIL_AFTER=200", "SIM_ITL=2s"}})
	g.start(t, s.ID)
	mark := g.mark(s.ID)
	prompt := strings.TrimSpace(strings.Repeat("word ", 300))
	stream := g.ai.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model: "qcrash", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	})
	chunks := 0
	for stream.Next() {
		chunks++
	}
	err := stream.Err()
	if chunks >= 300 {
		t.Fatalf("the whole answer (%d chunks) came before the engine died: the crash was not mid-stream", chunks)
	}
	if err == nil || !strings.Contains(err.Error(), "engine_") {
		t.Fatalf("after %d chunks the stream ended with %v; want the engine's death as an error", chunks, err)
	}
	if r := g.requestAfter(t, s.ID, mark); r.Error == "" {
		t.Fatalf("the request was recorded as %+v, want failed", r)
	}
}
