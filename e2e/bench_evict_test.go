package e2e

import (
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/services"
	"aima/tools"
)

// BenchmarkTTFTEviction: time to the first (and only) token of a one-word
// chat request through /v1, from the request's send, for an on-demand
// service that (1) is stopped with a GPU free: a cold start; (2) sleeps
// with its GPU free: a wake; (3) is stopped while both 80 GiB GPUs are
// taken by idle evictable services: the least recently used is put to
// sleep, then the cold start; (4) sleeps while another service took its
// GPU: that one is put to sleep, then the wake. The cold start and the
// wake, measured in the same run, are the baselines of the two ratios.
func BenchmarkTTFTEviction(b *testing.B) {
	p := newInprocGPUs(b, testenv.TwoGPUs())
	svc := map[string]services.Service{}
	for _, n := range []string{"ba", "bb", "bc"} {
		model := p.addModel(b, testenv.MakeModel(b, n))
		svc[n] = p.createService(b, tools.ServiceCreateInput{ModelID: model, Name: "bench-" + n, OnDemand: true, Evictable: true})
	}
	ask := func(name string) time.Duration {
		b.Helper()
		t0 := time.Now()
		if code, body := chat(b, p.URL, name, "hi"); code != 200 {
			b.Fatalf("%s: HTTP %d %s", name, code, body)
		}
		return time.Since(t0)
	}
	var cold, wake, evictCold, evictWake []time.Duration
	for i := 0; i < b.N; i++ {
		cold = append(cold, ask("ba"))
		p.call(b, "service_sleep", tools.ServiceRef{ServiceID: svc["ba"].ID}, nil)
		wake = append(wake, ask("ba"))
		ask("bb") // both GPUs taken now, ba the least recently used
		evictCold = append(evictCold, ask("bc"))
		if s := p.status(b, svc["ba"].ID); s.LastEviction == nil || s.LastEviction.By != svc["bc"].ID {
			b.Fatalf("ba not evicted by bc: %+v", s.LastEviction)
		}
		evictWake = append(evictWake, ask("ba")) // its GPU went to bc
		for _, n := range []string{"ba", "bb", "bc"} {
			p.call(b, "service_stop", tools.ServiceRef{ServiceID: svc[n].ID}, nil)
		}
	}
	reportLatency(b, "ttft-evict-then-cold-start", evictCold)
	b.ReportMetric(testenv.Ms(testenv.Median(cold)), "ms-ttft-cold-start")
	b.ReportMetric(testenv.Ms(testenv.Median(wake)), "ms-ttft-wake")
	b.ReportMetric(testenv.Ms(testenv.Median(evictWake)), "ms-ttft-evict-then-wake")
	b.ReportMetric(float64(testenv.Median(evictCold))/float64(testenv.Median(cold)), "ratio-evict-cold-vs-cold")
	b.ReportMetric(float64(testenv.Median(evictWake))/float64(testenv.Median(wake)), "ratio-evict-wake-vs-wake")
	b.Logf("cold %v\nwake %v\nevict+cold %v\nevict+wake %v", cold, wake, evictCold, evictWake)
}
