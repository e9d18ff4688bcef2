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

// gw is an in-process daemon (the gateway is one of its routes), whose vllm engine
// is the simulator, and an official OpenAI client pointed at its /v1.
type gw struct {
	*daemontest.Daemon
	ai openai.Client
}

// newGW starts the daemon. It skips in -short mode and fails without Docker.
func newGW(t testing.TB, extra string) *gw {
	t.Helper()
	testenv.RequireDocker(t)
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Extra: extra})
	d := daemontest.Start(t, cfg, daemontest.Options{})
	ai := openai.NewClient(option.WithBaseURL(d.URL+"/v1/"), option.WithAPIKey("sk-unused"), option.WithMaxRetries(0))
	return &gw{Daemon: d, ai: ai}
}

// model registers a model directory named name (its served model name).
func (g *gw) model(t testing.TB, name string) string {
	t.Helper()
	m, err := g.Domain.Models.Add(t.Context(), testenv.MakeModel(t, name), "")
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// service creates a vllm service; its containers go when the test ends.
func (g *gw) service(t testing.TB, spec services.CreateSpec) services.Service {
	t.Helper()
	spec.EngineType = "vllm"
	s, err := g.Domain.Services.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RemoveContainersWithLabel(t, "aima.service", s.ID)
	return s
}

// start starts a service and waits until it runs.
func (g *gw) start(t testing.TB, id string) services.Service {
	t.Helper()
	if _, err := g.Domain.Services.Start(t.Context(), id, 0); err != nil {
		t.Fatal(err)
	}
	s, err := g.Domain.Services.Wait(t.Context(), id, services.StatusRunning, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (g *gw) get(t testing.TB, id string) services.Service {
	t.Helper()
	s, err := g.Domain.Services.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// settled returns the service once no request of it is in flight or
// waiting: the gateway records a request's end (tokens, TTFT) after its last
// byte is written, so a client can see the end of an answer a moment before
// the figures do.
func (g *gw) settled(t testing.TB, id string) services.Service {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := g.get(t, id)
		if tr := s.Traffic; tr == nil || (tr.InFlight == 0 && tr.Waiting == 0) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStatus polls until the service has status want and says how long
// that took.
func (g *gw) waitStatus(t testing.TB, id string, want services.Status, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for time.Since(began) < within {
		if g.get(t, id).Status == want {
			return time.Since(began)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := g.get(t, id)
	t.Fatalf("%s is %s (%s) after %s, want %s", id, s.Status, s.Reason, within, want)
	return 0
}

// chat sends one non-streaming chat request.
func (g *gw) chat(ctx context.Context, model, prompt string) (*openai.ChatCompletion, error) {
	return g.ai.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	})
}

func (g *gw) mustChat(t testing.TB, model, prompt string) *openai.ChatCompletion {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := g.chat(ctx, model, prompt)
	if err != nil {
		t.Fatalf("chat %s: %v", model, err)
	}
	if len(c.Choices) != 1 || c.Choices[0].Message.Content != prompt {
		t.Fatalf("chat %s: %+v, want the echo of %q", model, c.Choices, prompt)
	}
	return c
}

// rawStream posts a streaming chat request and returns the response.
func (g *gw) rawStream(ctx context.Context, t testing.TB, model, prompt string) *http.Response {
	t.Helper()
	body := `{"model":"` + model + `","stream":true,"messages":[{"role":"user","content":"` + prompt + `"}]}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// engineMetrics reads the engine's own /metrics, bypassing aima.
func engineMetrics(t testing.TB, s services.Service) string {
	t.Helper()
	resp, err := http.Get(s.Endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// countEvents counts the service's events that match.
func (g *gw) countEvents(id string, match func(events.Event) bool) int {
	n := 0
	for _, ev := range g.Domain.Services.Bus().History(id, 0) {
		if match(ev) {
			n++
		}
	}
	return n
}
