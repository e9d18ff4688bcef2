package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const fast = "0.01" // --sim-time-scale for tests: 20 s start-up becomes 200 ms

// readyLines are the happy-path milestones in the order vLLM prints them.
var readyLines = []string{
	"Automatically detected platform cuda.",
	"vLLM API server version 0.11.0",
	"non-default args: {",
	"Resolved architecture: Qwen2ForCausalLM",
	"Using max model len 32768",
	"Waiting for init message from front-end.",
	"Initializing a V1 LLM engine (v0.11.0) with config:",
	"Starting to load model ",
	"Loading weights took ",
	"Model loading took ",
	"Using cache directory: ",
	"torch.compile takes ",
	"Available KV cache memory: ",
	"GPU KV cache size: ",
	"Maximum concurrency for 32,768 tokens per request: ",
	"Graph capturing finished in ",
	"init engine (profile, create kv cache, warmup model) took ",
	"Supported_tasks: ['generate']",
	"Starting vLLM API server 0 on http://127.0.0.1:",
	"Available routes are:",
	"Route: /health, Methods: GET",
	"INFO:     Started server process [",
	"INFO:     Waiting for application startup.",
	"INFO:     Application startup complete.",
}

func assertInOrder(t *testing.T, text string, lines []string) {
	t.Helper()
	pos := 0
	for _, l := range lines {
		i := strings.Index(text[pos:], l)
		if i < 0 {
			t.Fatalf("missing (or out of order) %q in:\n%s", l, text)
		}
		pos += i + len(l)
	}
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := startSim(t, nil, "serve", modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port),
		"--sim-time-scale", fast, "--served-model-name", "qwen")

	// Poll the port during start-up: the first successful connect must come
	// after the last start-up line before `Application startup complete.`
	// (late listen, like vLLM); the listener opens just before that line.
	var early atomic.Bool
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for !r.exited() {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 50*time.Millisecond)
			if err == nil {
				c.Close()
				early.Store(!strings.Contains(r.out.String(), "INFO:     Waiting for application startup."))
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	start := time.Now()
	if !r.out.waitFor("Application startup complete.", 3*time.Second) {
		t.Fatalf("never ready:\n%s\n%s", r.out, r.err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("start-up took %v, want ~200ms at scale 0.01", d)
	}
	<-polled
	if early.Load() {
		t.Fatal("port accepted a connection before the end of start-up")
	}
	assertInOrder(t, r.out.String(), readyLines)
	if !strings.HasPrefix(r.out.String(), "INFO ") {
		t.Errorf("first line should be the unprefixed platform line:\n%s", r.out.String()[:80])
	}
	// tqdm bars go to stderr, never stdout.
	if !strings.Contains(r.err.String(), "Loading safetensors checkpoint shards: 100% Completed | 4/4") ||
		!strings.Contains(r.err.String(), "Capturing CUDA graphs (decode, FULL): 100%|██████████| 35/35") {
		t.Errorf("stderr lacks progress bars:\n%s", r.err)
	}
	if strings.Contains(r.out.String(), "Loading safetensors") {
		t.Error("progress bar on stdout")
	}

	resp, body := get(t, base+"/health")
	if resp.StatusCode != 200 || body != "" {
		t.Errorf("/health = %d %q", resp.StatusCode, body)
	}
	if _, body = get(t, base+"/version"); body != `{"version":"0.11.0"}` {
		t.Errorf("/version = %s", body)
	}
	var models struct {
		Object string `json:"object"`
		Data   []struct {
			ID          string `json:"id"`
			OwnedBy     string `json:"owned_by"`
			Root        string `json:"root"`
			MaxModelLen int    `json:"max_model_len"`
		} `json:"data"`
	}
	_, body = get(t, base+"/v1/models")
	if err := json.Unmarshal([]byte(body), &models); err != nil || len(models.Data) != 1 ||
		models.Data[0].ID != "qwen" || models.Data[0].OwnedBy != "vllm" || models.Data[0].MaxModelLen != 32768 || models.Object != "list" {
		t.Errorf("/v1/models = %s (%v)", body, err)
	}

	// Non-streaming chat echoes the last user message.
	resp, body = post(t, base+"/v1/chat/completions", `{"model":"qwen","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Hello, world!"}]}`)
	var chat struct {
		Object  string `json:"object"`
		Choices []struct {
			Message      struct{ Role, Content string } `json:"message"`
			FinishReason string                         `json:"finish_reason"`
		} `json:"choices"`
		Usage usage `json:"usage"`
	}
	if err := json.Unmarshal([]byte(body), &chat); err != nil || resp.StatusCode != 200 || chat.Object != "chat.completion" ||
		chat.Choices[0].Message.Content != "Hello, world!" || chat.Choices[0].FinishReason != "stop" || chat.Usage.CompletionTokens != 4 {
		t.Errorf("chat = %d %s", resp.StatusCode, body)
	}

	// Streaming chat: SSE chunks that reassemble the echo, then [DONE].
	resp, body = post(t, base+"/v1/chat/completions", `{"model":"qwen","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three"}]}`)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("stream content type %q", ct)
	}
	text, sawUsage := "", false
	events := strings.Split(strings.TrimSpace(body), "\n\n")
	for _, ev := range events[:len(events)-1] {
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Usage *usage `json:"usage"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &c); err != nil || c.Object != "chat.completion.chunk" {
			t.Fatalf("bad chunk %q: %v", ev, err)
		}
		for _, ch := range c.Choices {
			text += ch.Delta.Content
		}
		sawUsage = sawUsage || (c.Usage != nil && c.Usage.CompletionTokens == 3)
	}
	if text != "one two three" || !sawUsage || events[len(events)-1] != "data: [DONE]" {
		t.Errorf("stream text %q usage %v body:\n%s", text, sawUsage, body)
	}

	// Completions, streaming, cut by max_tokens.
	_, body = post(t, base+"/v1/completions", `{"model":"qwen","prompt":"a b c d","max_tokens":2,"stream":true}`)
	if !strings.Contains(body, `"object":"text_completion"`) || !strings.Contains(body, `"finish_reason":"length"`) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("completion stream:\n%s", body)
	}
	_, body = post(t, base+"/v1/completions", `{"model":"qwen","prompt":"ping"}`)
	if !strings.Contains(body, `"text":"ping"`) || !strings.Contains(body, `"usage"`) {
		t.Errorf("completion = %s", body)
	}

	// Unknown model: vLLM's 404.
	resp, body = post(t, base+"/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`)
	if resp.StatusCode != 404 || body != "{\"error\":{\"code\":404,\"message\":\"The model `nope` does not exist.\",\"param\":null,\"type\":\"NotFoundError\"}}" {
		t.Errorf("unknown model = %d %s", resp.StatusCode, body)
	}

	_, body = get(t, base+"/metrics")
	for _, want := range []string{
		`vllm:num_requests_running{engine="0",model_name="qwen"} 0.0`,
		`vllm:num_requests_waiting{engine="0",model_name="qwen"} 0.0`,
		`vllm:kv_cache_usage_perc{engine="0",model_name="qwen"} 0.0`,
		`vllm:generation_tokens_total{engine="0",model_name="qwen"} 10.0`,
		`vllm:prompt_tokens_total{engine="0",model_name="qwen"}`,
		`vllm:request_success_total{engine="0",finished_reason="length",model_name="qwen"} 1.0`,
		`vllm:e2e_request_latency_seconds_count{engine="0",model_name="qwen"} 4.0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	access := regexp.MustCompile(`(?m)^\(APIServer pid=\d+\) INFO:     127\.0\.0\.1:\d+ - "GET /health HTTP/1\.1" 200 OK$`)
	if !access.MatchString(r.out.String()) {
		t.Errorf("no uvicorn access line:\n%s", r.out)
	}
	if !strings.Contains(r.out.String(), `"POST /v1/chat/completions HTTP/1.1" 404 Not Found`) {
		t.Error("no access line for the 404")
	}

	// SIGTERM (cancel): graceful, exit 0, promptly.
	stopAt := time.Now()
	r.cancel()
	if code := r.wait(t, time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	if d := time.Since(stopAt); d > time.Second {
		t.Errorf("shutdown took %v", d)
	}
	assertInOrder(t, r.out.String(), []string{"Shutting down FastAPI HTTP server.", "INFO:     Shutting down",
		"INFO:     Waiting for application shutdown.", "INFO:     Application shutdown complete.", "INFO:     Finished server process ["})
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
