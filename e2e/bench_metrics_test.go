package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/runtime/fakeruntime"
	"aima/services"
)

// benchServices is how many service records BenchmarkScrapeMetrics holds.
const benchServices = 1000

// BenchmarkScrapeMetrics measures one scrape of /metrics, as Prometheus
// makes it (gzip, its Accept header), with 1,000 service records, against
// the baseline of reading the same records through GET /api/service/list
// in the same run. The daemon is in process on the fake runtime (the
// scrape reads records and counters, never the container runtime), so no
// Docker is needed.
func BenchmarkScrapeMetrics(b *testing.B) {
	fr := fakeruntime.New()
	b.Cleanup(fr.Close)
	cfg := testenv.SimConfig(b, testenv.SimConfigOptions{Image: "fake/vllm:1", PortSpan: 3 * benchServices})
	d := daemontest.Start(b, cfg, daemontest.Options{Runtime: fr})
	ctx := context.Background()
	for i := range benchServices {
		if _, err := d.Domain.Services.Create(ctx, services.CreateSpec{ModelID: "org/tiny", EngineType: "vllm", Name: fmt.Sprintf("svc-%04d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	get := func(path string, header map[string]string) (time.Duration, int) {
		req, _ := http.NewRequest(http.MethodGet, d.URL+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return took, int(n)
	}
	asPrometheus := map[string]string{
		"Accept":          "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
		"Accept-Encoding": "gzip",
	}
	// Check once that every service is there (a state per status each).
	req, _ := http.NewRequest(http.MethodGet, d.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n, want := strings.Count(string(body), "\naima_service_status{"), len(services.AllStatuses)*benchServices; n != want {
		b.Fatalf("%d aima_service_status series, want %d", n, want)
	}
	var scrapes, lists []time.Duration
	var size, listSize int
	for b.Loop() {
		took, n := get("/metrics", asPrometheus)
		scrapes, size = append(scrapes, took), n
		took, n = get("/api/service/list", nil)
		lists, listSize = append(lists, took), n
	}
	reportLatency(b, "scrape", scrapes)
	b.ReportMetric(testenv.Ms(testenv.Median(lists)), "ms-service-list")
	b.ReportMetric(float64(testenv.Median(scrapes))/float64(testenv.Median(lists)), "ratio")
	b.Logf("%d services: /metrics %d bytes gzipped (%d plain), median %v; service list %d bytes, median %v",
		benchServices, size, len(body), testenv.Median(scrapes), listSize, testenv.Median(lists))
}
