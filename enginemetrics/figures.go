package enginemetrics

import (
	"context"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"

	"aima/engines"
	"aima/services"
)

// Rates need two samples of the token counters. A baseline must be at
// least minWindow older than the new sample (closer ones make noisy
// rates) and at most maxWindow (older ones average over too long).
const (
	minWindow  = time.Second
	maxWindow  = 10 * time.Minute
	keepSample = 8 // samples kept per service
)

// Figures are an engine's own live figures, the same for every engine
// type, read from its metrics. A figure the engine does not expose (or
// that could not be read) is absent.
type Figures struct {
	ServiceID string          `json:"service_id" jsonschema:"service ID"`
	Engine    string          `json:"engine" jsonschema:"engine type"`
	Status    services.Status `json:"status" jsonschema:"the service's status; figures are read only while its engine runs (running, unhealthy, sleeping)"`
	ScrapeOK  bool            `json:"scrape_ok" jsonschema:"true when the engine's metrics were read: the figures below are current"`
	ScrapedAt *time.Time      `json:"scraped_at,omitempty" jsonschema:"when the engine's metrics were read (absent when not tried)"`
	Error     string          `json:"error,omitempty" jsonschema:"why there are no figures: the service is not running, or the scrape failed (and how)"`
	URL       string          `json:"url,omitempty" jsonschema:"the engine's metrics URL"`

	RequestsRunning *float64 `json:"requests_running,omitempty" jsonschema:"requests the engine is processing now"`
	RequestsWaiting *float64 `json:"requests_waiting,omitempty" jsonschema:"requests queued in the engine"`
	KVCacheUsage    *float64 `json:"kv_cache_usage,omitempty" jsonschema:"share of the engine's KV cache in use, 0 to 1"`

	PromptTokensTotal     *float64 `json:"prompt_tokens_total,omitempty" jsonschema:"prompt tokens processed since the engine started"`
	GenerationTokensTotal *float64 `json:"generation_tokens_total,omitempty" jsonschema:"tokens generated since the engine started"`
	// The rates are the counters' increase over RateWindowSeconds, ending
	// at ScrapedAt.
	PromptTokensPerSecond     *float64 `json:"prompt_tokens_per_second,omitempty" jsonschema:"prompt tokens processed per second over rate_window_seconds"`
	GenerationTokensPerSecond *float64 `json:"generation_tokens_per_second,omitempty" jsonschema:"tokens generated per second over rate_window_seconds"`
	RateWindowSeconds         float64  `json:"rate_window_seconds,omitempty" jsonschema:"the interval the token rates are measured over (between two reads of the engine's counters)"`
}

// counters is one sample of a service's token counters.
type counters struct {
	at          time.Time
	prompt, gen *float64
}

// remember keeps a sample of the token counters for later rates.
func (sc *Scraper) remember(id string, at time.Time, fams map[string]*dto.MetricFamily, names engines.MetricNames) {
	c := counters{at: at, prompt: value(fams, names.PromptTokens, sum), gen: value(fams, names.GenerationTokens, sum)}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	h := sc.last[id]
	kept := h[:0:0]
	for _, old := range h {
		if at.Sub(old.at) <= maxWindow && old.at.Before(at) {
			kept = append(kept, old)
		}
	}
	if len(kept) >= keepSample {
		kept = kept[len(kept)-keepSample+1:]
	}
	sc.last[id] = append(kept, c)
}

// baseline is the newest remembered sample at least minWindow before at.
func (sc *Scraper) baseline(id string, at time.Time) (counters, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	h := sc.last[id]
	for i := len(h) - 1; i >= 0; i-- {
		if d := at.Sub(h[i].at); d >= minWindow && d <= maxWindow {
			return h[i], true
		}
	}
	return counters{}, false
}

// Figures reads a service's engine figures. A service that is not running,
// or whose engine cannot be read, gives figures with ScrapeOK false and the
// reason in Error, not an error: "no figures now" is a normal answer. When
// no earlier read of the counters is recent enough for rates, it reads
// them again after a second (bounded by ctx).
func (sc *Scraper) Figures(ctx context.Context, s services.Service, cat *engines.Catalog) Figures {
	f := Figures{ServiceID: s.ID, Engine: s.EngineType, Status: s.Status}
	t, ok := TargetOf(s, cat)
	if !ok {
		f.Error = "service " + s.ID + " is " + string(s.Status) + ": its engine serves metrics only while running"
		if engineUp(s.Status) {
			f.Error = "engine " + s.EngineType + " has no metrics endpoint"
		}
		return f
	}
	f.URL = t.URL
	r := sc.Scrape(ctx, t)
	if r.Err == nil {
		if _, ok := sc.baseline(s.ID, r.Time); !ok {
			select {
			case <-ctx.Done():
			case <-time.After(minWindow):
				if again := sc.Scrape(ctx, t); again.Err == nil {
					r = again
				}
			}
		}
	}
	at := r.Time.UTC()
	f.ScrapedAt = &at
	if r.Err != nil {
		f.Error = r.Err.Error()
		return f
	}
	f.ScrapeOK = true
	n := t.Names
	f.RequestsRunning = value(r.Families, n.RequestsRunning, sum)
	f.RequestsWaiting = value(r.Families, n.RequestsWaiting, sum)
	f.KVCacheUsage = value(r.Families, n.KVCacheUsage, maxOf)
	f.PromptTokensTotal = value(r.Families, n.PromptTokens, sum)
	f.GenerationTokensTotal = value(r.Families, n.GenerationTokens, sum)
	if base, ok := sc.baseline(s.ID, r.Time); ok {
		win := r.Time.Sub(base.at).Seconds()
		f.RateWindowSeconds = win
		f.PromptTokensPerSecond = rate(base.prompt, f.PromptTokensTotal, win)
		f.GenerationTokensPerSecond = rate(base.gen, f.GenerationTokensTotal, win)
	}
	return f
}

// rate is a counter's increase per second; a counter that went down was
// reset (the engine restarted), so its whole value is the increase.
func rate(before, now *float64, secs float64) *float64 {
	if before == nil || now == nil || secs <= 0 {
		return nil
	}
	d := *now - *before
	if d < 0 {
		d = *now
	}
	r := d / secs
	return &r
}

func sum(a, b float64) float64   { return a + b }
func maxOf(a, b float64) float64 { return max(a, b) }

// value combines the samples of the first family named that exists (an
// engine with several engine cores or ranks has one sample each): running
// requests and tokens add up; a usage share takes the fullest.
func value(fams map[string]*dto.MetricFamily, names []string, combine func(a, b float64) float64) *float64 {
	for _, name := range names {
		mf, ok := fams[name]
		if !ok || len(mf.GetMetric()) == 0 {
			continue
		}
		var v float64
		n := 0
		for _, m := range mf.GetMetric() {
			x := sampleValue(m)
			if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
				// Every figure here is a count or a share: an engine's NaN,
				// infinity or negative value is not one, and NaN or
				// infinity cannot even be encoded in a JSON answer.
				continue
			}
			if n == 0 {
				v = x
			} else {
				v = combine(v, x)
			}
			n++
		}
		if n == 0 || math.IsInf(v, 0) { // none, or a sum past the float range: unknown, not wrong
			return nil
		}
		return &v
	}
	return nil
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}
