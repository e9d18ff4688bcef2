package web_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"aima/client"
	"aima/events"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/services"
	"aima/tools"
)

// BenchmarkDashboardEventToPage measures how long a change takes to show in
// the dashboard: from a service_create call to its row in the page's table
// (a MutationObserver in the page stamps the moment, on the same clock),
// against the baseline of the same change reaching a plain SSE client of
// GET /api/events in the same run. The difference is the page's own part:
// EventSource, re-reading the record (service_status), drawing the row.
// The daemon runs on the fake runtime, so no engine is involved.
func BenchmarkDashboardEventToPage(b *testing.B) {
	d := fakeDaemon(b, newFake(b), daemontest.Options{})
	br := newBrowser(b, 1280, 800)
	br.navigate(d.URL + "/ui/")
	br.waitFor("the live indicator", `document.getElementById('conn').dataset.state === 'live'`, 20*time.Second)

	// The baseline reader: every created event's arrival time, by service name's id.
	resp, err := http.Get(d.URL + "/api/events")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	arrived := make(chan struct {
		id string
		at time.Time
	}, 1024)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			var ev events.Event
			if !ok || json.Unmarshal([]byte(line), &ev) != nil || ev.Type != events.TypeCreated {
				continue
			}
			arrived <- struct {
				id string
				at time.Time
			}{ev.ServiceID, time.Now()}
		}
	}()

	c := client.New(d.URL)
	var toStream, toPage []float64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("bench-%d", i)
		eval[bool](br, fmt.Sprintf(`(window.aimaRow = new Promise(resolve => {
			const seen = () => [...document.querySelectorAll('#services tbody tr a.name')].some(a => a.textContent === %q);
			if (seen()) return resolve(performance.timeOrigin + performance.now());
			const obs = new MutationObserver(() => { if (seen()) { obs.disconnect(); resolve(performance.timeOrigin + performance.now()); } });
			obs.observe(document.getElementById('main'), {childList: true, subtree: true});
		}), true)`, name))
		start := time.Now()
		raw, err := c.Call(b.Context(), "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm", Name: name}, nil)
		if err != nil {
			b.Fatal(err)
		}
		var s services.Service
		_ = json.Unmarshal(raw, &s)
		var streamAt time.Time
		for streamAt.IsZero() {
			select {
			case a := <-arrived:
				if a.id == s.ID {
					streamAt = a.at
				}
			case <-time.After(10 * time.Second):
				b.Fatal("no created event on the stream")
			}
		}
		pageMs, err := chromedp.Run(br.ctx, chromedp.Evaluate[float64](`window.aimaRow`, chromedp.EvalAwaitPromise))
		if err != nil {
			b.Fatal(err)
		}
		toStream = append(toStream, float64(streamAt.Sub(start).Microseconds())/1000)
		toPage = append(toPage, pageMs-float64(start.UnixMicro())/1000)
	}
	b.StopTimer()
	ms, mp := testenv.Median(toStream), testenv.Median(toPage)
	b.ReportMetric(ms, "ms-create-to-stream")
	b.ReportMetric(mp, "ms-create-to-page")
	b.ReportMetric(mp-ms, "ms-stream-to-page")
	b.ReportMetric(0, "ns/op")
	b.Logf("create → stream (ms): %v", toStream)
	b.Logf("create → page (ms): %v", toPage)
}
