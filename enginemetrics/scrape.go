// Package enginemetrics reads the engines' own Prometheus metrics: it
// scrapes a running service's /metrics (vLLM serves it by default; the
// catalog turns it on for SGLang and llama.cpp), keeps the parsed families
// for the daemon's /metrics/engines endpoint, and turns them into the few
// typed figures every engine has (requests running and waiting, KV cache
// use, token rates) for the service_metrics operation and the dashboard.
// It is the one engine-scrape client: both read through a Scraper.
package enginemetrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"aima/engines"
	"aima/services"
)

// DefaultTimeout bounds one scrape: an engine that does not answer within
// it is reported down rather than holding up the others.
const DefaultTimeout = 2 * time.Second

// maxBody caps what one engine's /metrics may send (vLLM sends ~100 KiB).
const maxBody = 16 << 20

// maxConcurrent bounds the scrapes in flight at once.
const maxConcurrent = 16

// Target is one running engine whose metrics can be read.
type Target struct {
	ServiceID   string
	ServiceName string
	Engine      string // engine type, e.g. vllm
	ModelID     string
	URL         string // the engine's metrics URL
	Names       engines.MetricNames
}

// TargetOf returns the metrics target of a service, and false when the
// service's engine serves no metrics now: it is not running (or unhealthy,
// or sleeping: a sleeping engine's process still serves its metrics), has no
// endpoint, or its engine has no metrics path.
func TargetOf(s services.Service, cat *engines.Catalog) (Target, bool) {
	if !engineUp(s.Status) {
		return Target{}, false
	}
	eng, err := cat.Get(s.EngineType)
	if err != nil || eng.MetricsPath == "" || s.Endpoint == "" {
		return Target{}, false
	}
	return Target{
		ServiceID: s.ID, ServiceName: s.Name, Engine: s.EngineType, ModelID: s.ModelID,
		URL: strings.TrimSuffix(s.Endpoint, "/") + eng.MetricsPath, Names: eng.Metrics,
	}, true
}

// engineUp reports whether a service in status st has an engine process.
func engineUp(st services.Status) bool {
	return st == services.StatusRunning || st == services.StatusUnhealthy || st == services.StatusSleeping
}

// Targets lists the metrics targets of every running service, oldest first.
// It reads the record cache's shared records (nothing is copied for the
// services that serve no metrics).
func Targets(ctx context.Context, mgr *services.Manager) ([]Target, error) {
	all, err := mgr.ListShared(ctx)
	if err != nil {
		return nil, err
	}
	var up []*services.Service
	for _, s := range all {
		if engineUp(s.Status) {
			up = append(up, s)
		}
	}
	sort.SliceStable(up, func(i, j int) bool { return up[i].CreatedAt.Before(up[j].CreatedAt) })
	var out []Target
	for _, s := range up {
		if t, ok := TargetOf(*s, mgr.Catalog()); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// Scrape is the result of reading one engine's metrics.
type Scrape struct {
	Target
	Time     time.Time     // when the scrape began
	Duration time.Duration // how long it took
	Err      error         // why it failed; nil when Families holds the engine's metrics
	Families map[string]*dto.MetricFamily
}

// Scraper reads engines' metrics. It remembers each service's last token
// counters, so rates come from the difference between two scrapes. Safe for
// concurrent use.
type Scraper struct {
	client  *http.Client
	timeout time.Duration
	now     func() time.Time

	mu   sync.Mutex
	last map[string][]counters // recent samples by service ID, oldest first
}

// NewScraper returns a scraper whose every request ends after timeout (0:
// DefaultTimeout).
func NewScraper(timeout time.Duration) *Scraper {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Scraper{
		client:  &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second}},
		timeout: timeout, now: time.Now, last: map[string][]counters{},
	}
}

// Close drops idle connections to the engines.
func (sc *Scraper) Close() { sc.client.CloseIdleConnections() }

// Scrape reads one target's metrics; a failure is in the result's Err.
func (sc *Scraper) Scrape(ctx context.Context, t Target) Scrape {
	r := Scrape{Target: t, Time: sc.now()}
	r.Families, r.Err = sc.fetch(ctx, t.URL)
	r.Duration = sc.now().Sub(r.Time)
	if r.Err == nil {
		sc.remember(t.ServiceID, r.Time, r.Families, t.Names)
	}
	return r
}

// ScrapeAll reads every target concurrently (at most 16 at once, each
// bounded by the scraper's timeout) and returns the results in the targets'
// order.
func (sc *Scraper) ScrapeAll(ctx context.Context, ts []Target) []Scrape {
	out := make([]Scrape, len(ts))
	sem := make(chan struct{}, maxConcurrent)
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer func() {
				// A scrape serves a /metrics request: whatever goes wrong
				// in one costs that engine's figures, never the daemon.
				if v := recover(); v != nil {
					out[i] = Scrape{Target: t, Time: sc.now(), Err: fmt.Errorf("scrape %s: panic: %v", t.URL, v)}
				}
			}()
			out[i] = sc.Scrape(ctx, t)
		}()
	}
	wg.Wait()
	return out
}

func (sc *Scraper) fetch(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, sc.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics URL %s: %w", url, err)
	}
	// Ask for the classic text format: every engine serves it.
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	resp, err := sc.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("scrape %s: HTTP %d (is the engine's metrics endpoint enabled?)", url, resp.StatusCode)
	}
	fams, err := parse(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: parse: %w", url, err)
	}
	return fams, nil
}

// parse reads an engine's text exposition. The parser is another
// project's code reading another program's output: a panic in it is that
// engine's parse error.
func parse(r io.Reader) (fams map[string]*dto.MetricFamily, err error) {
	defer func() {
		if v := recover(); v != nil {
			fams, err = nil, fmt.Errorf("the parser panicked: %v", v)
		}
	}()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Forget drops what the scraper remembers of a service (it was deleted).
func (sc *Scraper) Forget(serviceID string) {
	sc.mu.Lock()
	delete(sc.last, serviceID)
	sc.mu.Unlock()
}

// Tracked is how many services the scraper remembers samples of.
func (sc *Scraper) Tracked() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.last)
}
