package gateway_test

// Benchmarks of the gateway against the engine itself, in the same run:
// per-request overhead, time to first token and streaming throughput
// through aima vs straight to the simulator's published port, and a wake
// from sleep vs a cold start. Run them with a small count:
//
//	go test -run '^$' -bench Gateway -benchtime=5x ./gateway/
//
// See docs/performance.md.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/services"
)

// benchClient keeps connections alive, as an OpenAI SDK does.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}

// timedPost posts body to url and returns the time to the first byte of
// the first SSE data event (or of the body) and to the end, and the number
// of data events.
func timedPost(b *testing.B, url, body string) (first, total time.Duration, events int) {
	b.Helper()
	began := time.Now()
	resp, err := benchClient.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		b.Fatalf("%s: %d %s", url, resp.StatusCode, msg)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && first == 0 {
			first = time.Since(began)
		}
		if bytes.HasPrefix(line, []byte("data: ")) {
			events++
		}
		if err != nil {
			break
		}
	}
	return first, time.Since(began), events
}

// benchService starts one running simulator service behind a gateway.
func benchService(b *testing.B, spec services.CreateSpec) (*gw, services.Service) {
	b.Helper()
	g := newGW(b, "")
	g.model(b, "qwen-bench")
	spec.ModelID = "qwen-bench"
	s := g.service(b, spec)
	return g, g.start(b, s.ID)
}

// BenchmarkGatewayOverhead: a short non-streaming chat request through
// aima vs straight to the engine, alternating; reports both medians and
// the median of the paired differences.
func BenchmarkGatewayOverhead(b *testing.B) {
	g, s := benchService(b, services.CreateSpec{Env: []string{"DISABLE_ACCESS_LOG=1"}})
	body := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"one two three four five six seven eight"}]}`
	}
	viaAima, direct := g.URL+"/v1/chat/completions", s.Endpoint+"/v1/chat/completions"
	for range 20 { // warm both connection pools
		timedPost(b, viaAima, body("qwen-bench"))
		timedPost(b, direct, body("qwen-bench"))
	}
	var aima, eng, diff []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range 100 {
			var ta, td time.Duration
			if j%2 == 0 {
				_, ta, _ = timedPost(b, viaAima, body("qwen-bench"))
				_, td, _ = timedPost(b, direct, body("qwen-bench"))
			} else {
				_, td, _ = timedPost(b, direct, body("qwen-bench"))
				_, ta, _ = timedPost(b, viaAima, body("qwen-bench"))
			}
			aima, eng, diff = append(aima, ta), append(eng, td), append(diff, ta-td)
		}
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(testenv.Ms(testenv.Median(aima)), "ms-aima")
	b.ReportMetric(testenv.Ms(testenv.Median(eng)), "ms-direct")
	b.ReportMetric(testenv.Ms(testenv.Median(diff)), "ms-overhead")
	b.Logf("%d pairs: median %.3f ms through aima, %.3f ms direct, overhead %.3f ms (goal < 1 ms)", len(aima), testenv.Ms(testenv.Median(aima)), testenv.Ms(testenv.Median(eng)), testenv.Ms(testenv.Median(diff)))
}

// BenchmarkGatewayStreaming: time to first token of a stream, and the
// token rate of a long stream (2000 tokens, the engine as fast as it can
// go: a CPU-bound worst case on a small machine), through aima vs direct.
func BenchmarkGatewayStreaming(b *testing.B) {
	benchStreaming(b, nil)
}

// BenchmarkGatewayStreamingPaced is BenchmarkGatewayStreaming with the
// engine producing one token a millisecond (1000 tokens/s per stream,
// faster than real engines decode one stream).
func BenchmarkGatewayStreamingPaced(b *testing.B) {
	benchStreaming(b, []string{"SIM_ITL=20ms"}) // × SIM_TIME_SCALE 0.05 = 1 ms
}

func benchStreaming(b *testing.B, env []string) {
	g, s := benchService(b, services.CreateSpec{Env: env})
	short := `{"model":"qwen-bench","stream":true,"prompt":"one two three four"}`
	long := `{"model":"qwen-bench","stream":true,"prompt":"` + strings.TrimSpace(strings.Repeat("word ", 2000)) + `"}`
	viaAima, direct := g.URL+"/v1/completions", s.Endpoint+"/v1/completions"
	for range 10 {
		timedPost(b, viaAima, short)
		timedPost(b, direct, short)
	}
	var ttftA, ttftD, ttftDiff []time.Duration
	var rateA, rateD []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range 20 {
			fa, _, _ := timedPost(b, viaAima, short)
			fd, _, _ := timedPost(b, direct, short)
			ttftA, ttftD, ttftDiff = append(ttftA, fa), append(ttftD, fd), append(ttftDiff, fa-fd)
		}
		// Six pairs, each side first in turn: on two cores whichever
		// stream runs right after the other's finishes competes with its
		// leftovers (the proxy's buffers, a collection), and a fixed order
		// charged that to one side.
		for j := range 6 {
			first, second := direct, viaAima
			if j%2 == 1 {
				first, second = viaAima, direct
			}
			for _, url := range []string{first, second} {
				_, t, n := timedPost(b, url, long)
				if url == direct {
					rateD = append(rateD, float64(n)/t.Seconds())
				} else {
					rateA = append(rateA, float64(n)/t.Seconds())
				}
			}
		}
	}
	b.StopTimer()
	medF := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	ra, rd := medF(rateA), medF(rateD)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(testenv.Ms(testenv.Median(ttftA)), "ms-ttft-aima")
	b.ReportMetric(testenv.Ms(testenv.Median(ttftD)), "ms-ttft-direct")
	b.ReportMetric(testenv.Ms(testenv.Median(ttftDiff)), "ms-ttft-overhead")
	b.ReportMetric(ra, "tok/s-aima")
	b.ReportMetric(rd, "tok/s-direct")
	b.ReportMetric(ra/rd, "throughput-ratio")
	b.Logf("TTFT median %.3f ms through aima vs %.3f ms direct; streaming %.0f vs %.0f tokens/s = %.3f× (goal ≥ 0.98×)",
		testenv.Ms(testenv.Median(ttftA)), testenv.Ms(testenv.Median(ttftD)), ra, rd, ra/rd)
}

// BenchmarkGatewayWakeVsColdStart: the first answer from a sleeping
// service (wake through the gateway) vs from a stopped on-demand one (cold
// start through the gateway), for a 16 GiB model on the simulator.
func BenchmarkGatewayWakeVsColdStart(b *testing.B) {
	g, s := benchService(b, services.CreateSpec{OnDemand: true, Env: []string{"SIM_MODEL_SIZE=16GiB"}})
	url := g.URL + "/v1/completions"
	req := `{"model":"qwen-bench","prompt":"hello","max_tokens":1}`
	ctx := context.Background()
	var cold, wake []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.Domain.Services.Sleep(ctx, s.ID); err != nil {
			b.Fatal(err)
		}
		_, t, _ := timedPost(b, url, req)
		wake = append(wake, t)
		if _, err := g.Domain.Services.Stop(ctx, s.ID); err != nil {
			b.Fatal(err)
		}
		_, t, _ = timedPost(b, url, req)
		cold = append(cold, t)
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(testenv.Ms(testenv.Median(wake)), "ms-wake")
	b.ReportMetric(testenv.Ms(testenv.Median(cold)), "ms-cold")
	b.ReportMetric(float64(testenv.Median(cold))/float64(testenv.Median(wake)), "cold/wake")
	b.Logf("first answer after a wake %.0f ms, after a cold start %.0f ms (%s)", testenv.Ms(testenv.Median(wake)), testenv.Ms(testenv.Median(cold)),
		fmt.Sprintf("%.1f× faster", float64(testenv.Median(cold))/float64(testenv.Median(wake))))
}
