package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"aima/client"
	"aima/events"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/runtime/fakeruntime"
	"aima/tools"
)

const (
	fanoutSubscribers = 100
	fanoutEvents      = 200
)

// percentile of sorted samples (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// sseReader reads one /api/events stream and sends, for every event, the
// time from its Time (set by Publish) to the moment its data line was read
// from the socket.
func sseReader(ctx context.Context, url string, ready chan<- struct{}, lat chan<- time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	close(ready)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		at := time.Now()
		// Only the time is read (no full decode), so the 100 clients in
		// this process take as little CPU from the daemon as they can.
		i := bytes.Index(line, []byte(`"time":"`))
		if i < 0 || !bytes.Contains(line, []byte(`"message"`)) {
			continue
		}
		rest := line[i+len(`"time":"`):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
				lat <- at.Sub(t)
			}
		}
	}
	return nil
}

// BenchmarkEventFanout: 100 clients follow one service's events as SSE
// (GET /api/events) from an in-process daemon (on the fake runtime: only
// the bus and the HTTP front-end are measured); events are published on
// the daemon's bus every 2 ms, and each client notes when each arrives on
// its socket. Reported: percentiles of publish → socket over all
// deliveries, and the median of one Publish call with the 100 subscribers.
func BenchmarkEventFanout(b *testing.B) {
	d := daemontest.Start(b, testenv.SimConfig(b, testenv.SimConfigOptions{Image: testenv.EngineSimRef}), daemontest.Options{Runtime: fakeruntime.New()})
	c := client.New(d.URL)
	raw, err := c.Call(b.Context(), "service_create", tools.ServiceCreateInput{ModelID: "org/fanout", EngineType: "vllm"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var svc struct{ ID string }
	if err := client.Decode(raw, &svc); err != nil {
		b.Fatal(err)
	}
	bus := d.Env.Services.Bus()
	ctx, cancel := context.WithCancel(b.Context())
	lat := make(chan time.Duration, fanoutSubscribers*fanoutEvents*(b.N+1))
	var wg sync.WaitGroup
	for i := 0; i < fanoutSubscribers; i++ {
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = sseReader(ctx, fmt.Sprintf("%s/api/events?service_id=%s&after=%d", d.URL, svc.ID, bus.LastSeq(svc.ID)), ready, lat)
		}()
		select {
		case <-ready:
		case <-time.After(time.Minute):
			b.Fatal("an SSE client did not connect")
		}
	}
	publish := func(msg string) time.Duration {
		t0 := time.Now()
		bus.Publish(events.Event{ServiceID: svc.ID, Type: events.TypeMessage, Phase: "loading", Message: msg})
		return time.Since(t0)
	}
	// Every subscriber is in its live loop once it has seen a first event.
	publish("warm-up")
	for i := 0; i < fanoutSubscribers; i++ {
		<-lat
	}
	var samples, publishT []time.Duration
	for n := 0; n < b.N; n++ {
		for i := 0; i < fanoutEvents; i++ {
			publishT = append(publishT, publish(fmt.Sprintf("event %d", i)))
			time.Sleep(2 * time.Millisecond)
		}
		for i := 0; i < fanoutSubscribers*fanoutEvents; i++ {
			select {
			case l := <-lat:
				samples = append(samples, l)
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d deliveries arrived", i, fanoutSubscribers*fanoutEvents)
			}
		}
	}
	cancel()
	wg.Wait()
	slices.Sort(samples)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(fanoutSubscribers), "subscribers")
	b.ReportMetric(msOf(percentile(samples, 0.50)), "ms-p50")
	b.ReportMetric(msOf(percentile(samples, 0.99)), "ms-p99")
	b.ReportMetric(msOf(samples[len(samples)-1]), "ms-max")
	b.ReportMetric(float64(benchMedian(publishT).Microseconds()), "µs-publish")
}
