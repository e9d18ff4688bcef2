package enginemetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"aima/engines"
	"aima/services"
)

// vllmText is a trimmed real vLLM exposition (two engine cores).
func vllmText(running, prompt, gen float64) string {
	return fmt.Sprintf(`# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} %[1]g
vllm:num_requests_running{engine="1",model_name="m"} 1.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 2.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="m"} %[2]g
vllm:prompt_tokens_created{engine="0",model_name="m"} 1.7e+09
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} %[3]g
`, running, prompt, gen)
}

func running(endpoint string) services.Service {
	return services.Service{ID: "svc-1", Name: "one", EngineType: "vllm", Status: services.StatusRunning, Endpoint: endpoint}
}

func catalog(t *testing.T) *engines.Catalog {
	c, err := engines.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFiguresFromTwoReads(t *testing.T) {
	var reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		n := float64(reads.Add(1))
		fmt.Fprint(w, vllmText(3, 100*n, 40*n))
	}))
	defer srv.Close()
	sc := NewScraper(time.Second)
	defer sc.Close()
	base := time.Now()
	clock := base
	sc.now = func() time.Time { return clock }
	f := sc.Figures(context.Background(), running(srv.URL), catalog(t))
	// The first read has no baseline: it read again after a second (the
	// fake clock did not move, so there is still no window).
	if !f.ScrapeOK || f.Error != "" || reads.Load() != 2 {
		t.Fatalf("figures %+v after %d reads", f, reads.Load())
	}
	if *f.RequestsRunning != 4 || *f.RequestsWaiting != 2 || *f.KVCacheUsage != 0.5 || *f.PromptTokensTotal != 200 {
		t.Fatalf("figures %+v", f)
	}
	clock = base.Add(4 * time.Second)
	f = sc.Figures(context.Background(), running(srv.URL), catalog(t))
	if reads.Load() != 3 || f.RateWindowSeconds != 4 || *f.PromptTokensPerSecond != 25 || *f.GenerationTokensPerSecond != 10 {
		t.Fatalf("figures %+v (reads %d)", f, reads.Load())
	}
	if f.URL != srv.URL+"/metrics" || !f.ScrapedAt.Equal(clock.UTC()) {
		t.Fatalf("url %s at %v", f.URL, f.ScrapedAt)
	}
}

func TestFiguresWithoutMetrics(t *testing.T) {
	sc := NewScraper(200 * time.Millisecond)
	defer sc.Close()
	stopped := running("http://127.0.0.1:1")
	stopped.Status = services.StatusStopped
	if f := sc.Figures(context.Background(), stopped, catalog(t)); f.ScrapeOK || f.ScrapedAt != nil || f.Error == "" {
		t.Fatalf("stopped: %+v", f)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	f := sc.Figures(context.Background(), running(srv.URL), catalog(t))
	if f.ScrapeOK || f.ScrapedAt == nil || f.Error == "" {
		t.Fatalf("404: %+v", f)
	}
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	start := time.Now()
	if f := sc.Figures(context.Background(), running(hang.URL), catalog(t)); f.ScrapeOK || time.Since(start) > 5*time.Second {
		t.Fatalf("hanging engine: %+v after %s", f, time.Since(start))
	}
}

func TestRateAcrossReset(t *testing.T) {
	before, now := 500.0, 30.0
	if r := rate(&before, &now, 3); *r != 10 {
		t.Fatalf("rate after a reset %v", *r)
	}
}

func TestCatalogMetricsForEveryEngine(t *testing.T) {
	for _, e := range catalog(t).List() {
		n := e.Metrics
		if e.MetricsPath == "" || len(n.RequestsRunning) == 0 || len(n.RequestsWaiting) == 0 || len(n.KVCacheUsage) == 0 ||
			len(n.PromptTokens) == 0 || len(n.GenerationTokens) == 0 {
			t.Errorf("engine %s: metrics path %q names %+v", e.Type, e.MetricsPath, n)
		}
	}
}

// An engine's NaN, infinite or negative samples are not figures: they are
// left out (a figure of only such samples is unknown), so a service's
// metrics always encode as JSON.
func TestFiguresIgnoreImpossibleSamples(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0"} NaN
vllm:num_requests_running{engine="1"} 2
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0"} -3
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0"} +Inf
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0"} 1.7976931348623157e308
vllm:prompt_tokens_total{engine="1"} 1.7976931348623157e308
`)
	}))
	defer srv.Close()
	sc := NewScraper(time.Second)
	defer sc.Close()
	f := sc.Figures(context.Background(), running(srv.URL), catalog(t))
	if f.RequestsRunning == nil || *f.RequestsRunning != 2 || f.RequestsWaiting != nil || f.KVCacheUsage != nil || f.PromptTokensTotal != nil {
		t.Fatalf("figures %+v", f)
	}
	if _, err := json.Marshal(f); err != nil {
		t.Fatalf("the figures do not encode: %v", err)
	}
}
