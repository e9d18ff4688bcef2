package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// metrics backs GET /metrics with vLLM's Prometheus names and labels
// (engine="0", model_name=<first served name>), and the periodic
// `Engine 000: Avg prompt throughput...` log line. Values are real counts of
// the requests the simulator answered.
type metrics struct {
	mu        sync.Mutex
	model     string
	numBlocks int
	created   float64

	running      int
	promptTokens int
	genTokens    int
	success      map[string]int // by finished_reason
	ttft, e2e    histogram

	// since the last stats log line
	intervalPrompt, intervalGen int
	lastActive                  bool
}

func newMetrics(model string, numBlocks int) *metrics {
	return &metrics{
		model: model, numBlocks: numBlocks, created: float64(time.Now().UnixNano()) / 1e9,
		success: map[string]int{"stop": 0, "length": 0, "abort": 0},
		ttft: histogram{buckets: []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
			0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560}},
		e2e: histogram{buckets: []float64{0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60,
			120, 240, 480, 960, 1920, 7680}},
	}
}

// begin counts a request as running; end records its outcome.
func (m *metrics) begin() {
	m.mu.Lock()
	m.running++
	m.mu.Unlock()
}

func (m *metrics) end(prompt, gen int, reason string, ttft, e2e time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running--
	m.promptTokens += prompt
	m.genTokens += gen
	m.intervalPrompt += prompt
	m.intervalGen += gen
	m.success[reason]++
	m.ttft.observe(ttft.Seconds())
	m.e2e.observe(e2e.Seconds())
}

// kvUsage pretends each running request holds one block.
func (m *metrics) kvUsage() float64 {
	if m.numBlocks == 0 {
		return 0
	}
	return math.Min(1, float64(m.running)/float64(m.numBlocks))
}

// logStats prints vLLM's periodic engine stats, like vLLM only while there
// is traffic (plus one trailing idle line).
func (m *metrics) logStats(l *logger, interval time.Duration) {
	m.mu.Lock()
	active := m.intervalPrompt > 0 || m.intervalGen > 0
	show := active || m.lastActive
	secs := interval.Seconds()
	p, g := float64(m.intervalPrompt)/secs, float64(m.intervalGen)/secs
	running, usage := m.running, m.kvUsage()
	m.intervalPrompt, m.intervalGen, m.lastActive = 0, 0, active
	m.mu.Unlock()
	if show {
		l.api("INFO", "loggers.py:123", "Engine 000: Avg prompt throughput: %.1f tokens/s, Avg generation throughput: %.1f tokens/s, Running: %d reqs, Waiting: 0 reqs, GPU KV cache usage: %.1f%%, Prefix cache hit rate: 0.0%%", p, g, running, usage*100)
	}
}

// render writes the Prometheus text exposition (format 0.0.4).
func (m *metrics) render(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	lbl := fmt.Sprintf(`engine="0",model_name=%q`, m.model)
	var b strings.Builder
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sample := func(name, labels string, v float64) {
		fmt.Fprintf(&b, "%s{%s} %s\n", name, labels, pyFloat(v))
	}
	gauge := func(name, help string, v float64) {
		metric(name, "gauge", help)
		sample(name, lbl, v)
	}
	counter := func(name, help string, v float64) {
		metric(name, "counter", help)
		sample(name, lbl, v)
		sample(strings.TrimSuffix(name, "_total")+"_created", lbl, m.created)
	}
	gauge("vllm:num_requests_running", "Number of requests in model execution batches.", float64(m.running))
	gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", 0)
	gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", m.kvUsage())
	counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", float64(m.promptTokens))
	counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", 0)
	counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.", 0)
	counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", float64(m.promptTokens))
	counter("vllm:generation_tokens_total", "Number of generation tokens processed.", float64(m.genTokens))
	metric("vllm:request_success_total", "counter", "Count of successfully processed requests.")
	for _, r := range []string{"stop", "length", "abort"} {
		sample("vllm:request_success_total", fmt.Sprintf(`engine="0",finished_reason=%q,model_name=%q`, r, m.model), float64(m.success[r]))
	}
	m.ttft.render(&b, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", lbl)
	m.e2e.render(&b, "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", lbl)
	metric("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
	sample("vllm:cache_config_info", fmt.Sprintf(`block_size="16",cache_dtype="auto",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="%d",num_cpu_blocks="None"`, m.numBlocks), 1)
	_, _ = io.WriteString(w, b.String())
}

// histogram is a cumulative Prometheus histogram.
type histogram struct {
	buckets []float64
	counts  []int // per bucket, non-cumulative
	sum     float64
	n       int
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]int, len(h.buckets))
	}
	for i, le := range h.buckets {
		if v <= le {
			h.counts[i]++
			break
		}
	}
	h.sum += v
	h.n++
}

func (h *histogram) render(b *strings.Builder, name, help, lbl string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	cum := 0
	for i, le := range h.buckets {
		if h.counts != nil {
			cum += h.counts[i]
		}
		fmt.Fprintf(b, "%s_bucket{%s,le=\"%s\"} %s\n", name, lbl, pyFloat(le), pyFloat(float64(cum)))
	}
	fmt.Fprintf(b, "%s_bucket{%s,le=\"+Inf\"} %s\n", name, lbl, pyFloat(float64(h.n)))
	fmt.Fprintf(b, "%s_count{%s} %s\n%s_sum{%s} %s\n", name, lbl, pyFloat(float64(h.n)), name, lbl, pyFloat(h.sum))
}

// pyFloat formats like prometheus_client (Python repr of a float: "0.0", "1.5", "1.7e+09").
func pyFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e16 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
