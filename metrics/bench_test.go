package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/runtime/fakeruntime"
	"aima/services"
)

// BenchmarkMetricsHandler is one /metrics gather and encoding with 1,000
// service records, in process (no HTTP hop): the part of a scrape that
// aima's code and client_golang do. e2e's BenchmarkScrapeMetrics measures
// the whole scrape over HTTP against a baseline.
func BenchmarkMetricsHandler(b *testing.B) {
	fr := fakeruntime.New()
	b.Cleanup(fr.Close)
	cfg := testenv.SimConfig(b, testenv.SimConfigOptions{Image: fakeImage, PortSpan: 3000})
	d := daemontest.Start(b, cfg, daemontest.Options{Runtime: fr})
	for i := range 1000 {
		if _, err := d.Domain.Services.Create(context.Background(), services.CreateSpec{ModelID: "org/tiny", EngineType: "vllm", Name: fmt.Sprintf("svc-%04d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	h := d.Handler()
	for _, c := range []struct {
		name, path string
		gz         bool
	}{{"metrics", "/metrics", false}, {"metrics-gzip", "/metrics", true}, {"service-list", "/api/service/list", false}} {
		gz := c.gz
		b.Run(c.name, func(b *testing.B) {
			var before, after syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+c.path, nil)
				if gz {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
			b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}
