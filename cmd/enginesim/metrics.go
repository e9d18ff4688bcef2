package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// blockSize is vLLM's default KV cache block size in tokens.
const blockSize = 16

// metrics backs GET /metrics with vLLM's Prometheus names and labels
// (engine="0", model_name=<first served name>), and the periodic
// `Engine 000: Avg prompt throughput...` log line. Values are real counts of
// the requests the simulator answered, scheduled like vLLM's: at most
// --max-num-seqs run at once and the rest wait; each running request holds
// the KV cache blocks of its prompt and output.
type metrics struct {
	mu        sync.Mutex
	model     string
	numBlocks int
	created   float64
	slots     chan struct{} // one per running request (max-num-seqs)

	running, waiting int
	heldBlocks       int
	promptTokens     int
	genTokens        int
	preemptions      int
	success          map[string]int // by finished_reason
	ttft, e2e, queue histogram
	itl              histogram
	promptHist       histogram
	genHist          histogram

	// since the last stats log line
	intervalPrompt, intervalGen int
	lastActive                  bool
}

// vLLM's bucket boundaries (vllm/v1/metrics/loggers.py).
var (
	latencyBuckets = []float64{0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680}
	itlBuckets     = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}
	tokenBuckets   = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000}
)

func newMetrics(model string, numBlocks, maxNumSeqs int) *metrics {
	return &metrics{
		model: model, numBlocks: numBlocks, created: float64(time.Now().UnixNano()) / 1e9,
		slots:   make(chan struct{}, max(maxNumSeqs, 1)),
		success: map[string]int{"stop": 0, "length": 0, "abort": 0},
		ttft: histogram{buckets: []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
			0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560}},
		e2e: histogram{buckets: latencyBuckets}, queue: histogram{buckets: latencyBuckets},
		itl: histogram{buckets: itlBuckets}, promptHist: histogram{buckets: tokenBuckets}, genHist: histogram{buckets: tokenBuckets},
	}
}

// blocksFor is how many KV cache blocks a request of so many tokens holds.
func blocksFor(tokens int) int { return (tokens + blockSize - 1) / blockSize }

// begin schedules a request: it waits (counted as waiting) until one of the
// max-num-seqs slots is free, then runs holding the KV blocks of its tokens,
// which it returns for end. It returns false, having waited in vain (an
// abort), when ctx ends first.
func (m *metrics) begin(ctx context.Context, tokens int) (int, bool) {
	queued := time.Now()
	select {
	case m.slots <- struct{}{}:
	default:
		m.mu.Lock()
		m.waiting++
		m.mu.Unlock()
		select {
		case m.slots <- struct{}{}:
		case <-ctx.Done():
			m.mu.Lock()
			m.waiting--
			m.success["abort"]++
			m.mu.Unlock()
			return 0, false
		}
		m.mu.Lock()
		m.waiting--
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running++
	blocks := blocksFor(tokens)
	m.heldBlocks += blocks
	m.queue.observe(time.Since(queued).Seconds())
	return blocks, true
}

// end releases the request's slot and its blocks and records its outcome
// (gen is the tokens it delivered: 0 for an abort).
func (m *metrics) end(blocks, prompt, gen int, reason string, ttft, e2e time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	<-m.slots
	m.running--
	m.heldBlocks -= blocks
	m.promptTokens += prompt
	m.genTokens += gen
	m.intervalPrompt += prompt
	m.intervalGen += gen
	m.success[reason]++
	m.ttft.observe(ttft.Seconds())
	m.e2e.observe(e2e.Seconds())
	m.promptHist.observe(float64(prompt))
	m.genHist.observe(float64(gen))
	if gen > 1 {
		m.itl.observe((e2e - ttft).Seconds() / float64(gen-1))
	}
}

// kvUsage is the share of the KV cache blocks the running requests hold.
func (m *metrics) kvUsage() float64 {
	if m.numBlocks == 0 {
		return 0
	}
	return math.Min(1, float64(m.heldBlocks)/float64(m.numBlocks))
}

// logStats prints vLLM's periodic engine stats, like vLLM only while there
// is traffic (plus one trailing idle line).
func (m *metrics) logStats(l *logger, interval time.Duration) {
	m.mu.Lock()
	active := m.intervalPrompt > 0 || m.intervalGen > 0
	show := active || m.lastActive
	secs := interval.Seconds()
	p, g := float64(m.intervalPrompt)/secs, float64(m.intervalGen)/secs
	running, waiting, usage := m.running, m.waiting, m.kvUsage()
	m.intervalPrompt, m.intervalGen, m.lastActive = 0, 0, active
	m.mu.Unlock()
	if show {
		l.api("INFO", "loggers.py:123", "Engine 000: Avg prompt throughput: %.1f tokens/s, Avg generation throughput: %.1f tokens/s, Running: %d reqs, Waiting: %d reqs, GPU KV cache usage: %.1f%%, Prefix cache hit rate: 0.0%%", p, g, running, waiting, usage*100)
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
	gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", float64(m.waiting))
	gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", m.kvUsage())
	counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", float64(m.promptTokens))
	counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", 0)
	counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.", float64(m.preemptions))
	counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", float64(m.promptTokens))
	counter("vllm:generation_tokens_total", "Number of generation tokens processed.", float64(m.genTokens))
	metric("vllm:request_success_total", "counter", "Count of successfully processed requests.")
	for _, r := range []string{"stop", "length", "abort"} {
		sample("vllm:request_success_total", fmt.Sprintf(`engine="0",finished_reason=%q,model_name=%q`, r, m.model), float64(m.success[r]))
	}
	m.ttft.render(&b, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", lbl)
	m.e2e.render(&b, "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", lbl)
	m.queue.render(&b, "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", lbl)
	m.itl.render(&b, "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", lbl)
	m.promptHist.render(&b, "vllm:request_prompt_tokens", "Number of prefill tokens processed.", lbl)
	m.genHist.render(&b, "vllm:request_generation_tokens", "Number of generation tokens processed.", lbl)
	metric("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
	sample("vllm:cache_config_info", fmt.Sprintf(`block_size="%d",cache_dtype="auto",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="%d",num_cpu_blocks="None"`, blockSize, m.numBlocks), 1)
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

// genRate is the average generation rate over the requests' time (tokens/s).
func (m *metrics) genRate() float64 {
	if m.e2e.sum <= 0 {
		return 0
	}
	return float64(m.genTokens) / m.e2e.sum
}

// renderSGLang writes SGLang's series (--enable-metrics): labelled by
// model_name, from the same counts as vLLM's.
func (m *metrics) renderSGLang(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	lbl := fmt.Sprintf(`model_name=%q`, m.model)
	var b strings.Builder
	one := func(name, typ, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s{%s} %s\n", name, help, name, typ, name, lbl, pyFloat(v))
	}
	one("sglang:num_running_reqs", "gauge", "The number of running requests.", float64(m.running))
	one("sglang:num_used_tokens", "gauge", "The number of used tokens.", float64(m.heldBlocks*blockSize))
	one("sglang:token_usage", "gauge", "The token usage.", m.kvUsage())
	one("sglang:gen_throughput", "gauge", "The generation throughput (token/s).", m.genRate())
	one("sglang:num_queue_reqs", "gauge", "The number of requests in the waiting queue.", float64(m.waiting))
	one("sglang:cache_hit_rate", "gauge", "The prefix cache hit rate.", 0)
	one("sglang:spec_accept_length", "gauge", "The average acceptance length of speculative decoding.", 0)
	one("sglang:prompt_tokens_total", "counter", "Number of prefill tokens processed.", float64(m.promptTokens))
	one("sglang:generation_tokens_total", "counter", "Number of generation tokens processed.", float64(m.genTokens))
	one("sglang:num_requests_total", "counter", "Number of requests processed.", float64(m.e2e.n))
	m.ttft.render(&b, "sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", lbl)
	m.e2e.render(&b, "sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds", lbl)
	_, _ = io.WriteString(w, b.String())
}

// renderLlama writes llama-server's series (--metrics): no labels, values
// as llama-server prints them.
func (m *metrics) renderLlama(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	one := func(name, typ, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, strconv.FormatFloat(v, 'g', -1, 64))
	}
	promptSecs := m.ttft.sum
	genSecs := math.Max(m.e2e.sum-m.ttft.sum, 0)
	rate := func(tokens int, secs float64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(tokens) / secs
	}
	one("llamacpp:prompt_tokens_total", "counter", "Number of prompt tokens processed.", float64(m.promptTokens))
	one("llamacpp:prompt_seconds_total", "counter", "Prompt process time", promptSecs)
	one("llamacpp:tokens_predicted_total", "counter", "Number of generation tokens processed.", float64(m.genTokens))
	one("llamacpp:tokens_predicted_seconds_total", "counter", "Predict process time", genSecs)
	one("llamacpp:n_decode_total", "counter", "Total number of llama_decode() calls", float64(m.genTokens))
	one("llamacpp:prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", rate(m.promptTokens, promptSecs))
	one("llamacpp:predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.", rate(m.genTokens, genSecs))
	one("llamacpp:kv_cache_usage_ratio", "gauge", "KV-cache usage. 1 means 100 percent usage.", m.kvUsage())
	one("llamacpp:kv_cache_tokens", "gauge", "KV-cache tokens.", float64(m.heldBlocks*blockSize))
	one("llamacpp:requests_processing", "gauge", "Number of requests processing.", float64(m.running))
	one("llamacpp:requests_deferred", "gauge", "Number of requests deferred.", float64(m.waiting))
	_, _ = io.WriteString(w, b.String())
}
