package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// With one sequence slot and a pause per token, a second request waits
// while the first runs: the metrics show one running, one waiting, the
// first request's KV blocks, and the queue time once both are done.
func TestMetricsScheduling(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := startSim(t, nil, "serve", modelDir(t), "--host", "127.0.0.1", "--port", fmt.Sprint(port),
		"--sim-time-scale", fast, "--served-model-name", "qwen", "--max-num-seqs", "1", "--sim-itl", "10s")
	if !r.out.waitFor("Application startup complete.", 3*time.Second) {
		t.Fatalf("never ready:\n%s\n%s", r.out, r.err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			post(t, base+"/v1/completions", `{"model":"qwen","prompt":"a b c d","max_tokens":8}`)
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		_, body = get(t, base+"/metrics")
		if strings.Contains(body, `vllm:num_requests_waiting{engine="0",model_name="qwen"} 1.0`) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{
		`vllm:num_requests_running{engine="0",model_name="qwen"} 1.0`,
		`vllm:num_requests_waiting{engine="0",model_name="qwen"} 1.0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("while one request runs and one waits, /metrics lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `vllm:kv_cache_usage_perc{engine="0",model_name="qwen"} 0.0`+"\n") {
		t.Errorf("a running request holds no KV cache:\n%s", body)
	}
	wg.Wait()
	_, body = get(t, base+"/metrics")
	for _, want := range []string{
		`vllm:num_requests_running{engine="0",model_name="qwen"} 0.0`,
		`vllm:kv_cache_usage_perc{engine="0",model_name="qwen"} 0.0`,
		`vllm:request_queue_time_seconds_count{engine="0",model_name="qwen"} 2.0`,
		`vllm:request_generation_tokens_count{engine="0",model_name="qwen"} 2.0`,
		`vllm:inter_token_latency_seconds_count{engine="0",model_name="qwen"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("after both, /metrics lacks %q:\n%s", want, body)
		}
	}
}
