package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"aima/enginemetrics"
	"aima/errs"
	"aima/httperr"
)

// Labels aima adds to every engine series on /metrics/engines (prefixed,
// so they never clash with the engine's own labels).
const (
	ServiceLabel = "aima_service"
	EngineLabel  = "aima_engine"
)

// scrapeBudget bounds a whole /metrics/engines request: the engines are
// read concurrently, each within the scraper's own timeout.
const scrapeBudget = 10 * time.Second

// serveEngines is GET /metrics/engines: every running engine's own
// metrics, read now, concurrently, labelled with the service and engine,
// plus aima_engine_scrape_up and aima_engine_scrape_duration_seconds per
// engine. One engine that fails or hangs costs only its own series.
func (m *Metrics) serveEngines(w http.ResponseWriter, r *http.Request) {
	src := m.sources()
	if src == nil || src.Services == nil || src.Engines == nil {
		httperr.Write(w, 0, errs.New(errs.Unavailable, "engine metrics are not available in this daemon"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), scrapeBudget)
	defer cancel()
	targets, err := enginemetrics.Targets(ctx, src.Services)
	if err != nil {
		httperr.Write(w, 0, err)
		return
	}
	fams := mergeScrapes(src.Engines.ScrapeAll(ctx, targets))
	format := expfmt.NegotiateIncludingOpenMetrics(r.Header)
	if format.FormatType() != expfmt.TypeOpenMetrics {
		format = expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	w.Header().Set("Content-Type", string(format))
	enc := expfmt.NewEncoder(w, format)
	for _, mf := range fams {
		if len(mf.Metric) == 0 {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			return // the client went away
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		_ = c.Close()
	}
}

var upHelp, durHelp = "1 when aima read the engine's own metrics for this scrape, else 0.", "How long reading the engine's metrics took."

// mergeScrapes relabels every scraped series with its service and engine
// and merges the families of all engines by name (one HELP and TYPE per
// name, as the text format requires), sorted by name.
func mergeScrapes(scrapes []enginemetrics.Scrape) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	up := &dto.MetricFamily{Name: proto.String("aima_engine_scrape_up"), Help: &upHelp, Type: dto.MetricType_GAUGE.Enum()}
	dur := &dto.MetricFamily{Name: proto.String("aima_engine_scrape_duration_seconds"), Help: &durHelp, Type: dto.MetricType_GAUGE.Enum()}
	for _, s := range scrapes {
		labels := []*dto.LabelPair{
			{Name: proto.String(EngineLabel), Value: proto.String(s.Engine)},
			{Name: proto.String(ServiceLabel), Value: proto.String(s.ServiceID)},
		}
		v := 0.0
		if s.Err == nil {
			v = 1
		}
		up.Metric = append(up.Metric, &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: &v}})
		d := s.Duration.Seconds()
		dur.Metric = append(dur.Metric, &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: &d}})
		for name, mf := range s.Families {
			into, ok := byName[name]
			if !ok {
				into = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Unit: mf.Unit}
				byName[name] = into
			} else if into.GetType() != mf.GetType() {
				continue // two engines disagree on a name's type: keep the first
			}
			for _, mt := range mf.Metric {
				mt.Label = withLabels(mt.Label, labels)
				into.Metric = append(into.Metric, mt)
			}
		}
	}
	out := []*dto.MetricFamily{up, dur}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, byName[n])
	}
	return out
}

// withLabels adds aima's labels to a series, replacing an engine label of
// the same name, sorted by name as the exposition expects.
func withLabels(have, add []*dto.LabelPair) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(have)+len(add))
	for _, l := range have {
		if l.GetName() != ServiceLabel && l.GetName() != EngineLabel {
			out = append(out, l)
		}
	}
	out = append(out, add...)
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// sdTarget is one entry of Prometheus HTTP service discovery.
type sdTarget struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// serveTargets is GET /metrics/targets: the running engines in Prometheus
// HTTP service-discovery format (http_sd_configs), one entry per engine
// with its metrics path and aima's labels, for scraping engines directly.
func (m *Metrics) serveTargets(w http.ResponseWriter, r *http.Request) {
	src := m.sources()
	if src == nil || src.Services == nil {
		httperr.Write(w, 0, errs.New(errs.Unavailable, "engine targets are not available in this daemon"))
		return
	}
	targets, err := enginemetrics.Targets(r.Context(), src.Services)
	if err != nil {
		httperr.Write(w, 0, err)
		return
	}
	out := make([]sdTarget, 0, len(targets))
	for _, t := range targets {
		u, err := url.Parse(t.URL)
		if err != nil || u.Host == "" {
			continue
		}
		out = append(out, sdTarget{Targets: []string{u.Host}, Labels: map[string]string{
			"__scheme__": u.Scheme, "__metrics_path__": u.Path,
			ServiceLabel: t.ServiceID, EngineLabel: t.Engine, "aima_service_name": t.ServiceName,
			"aima_model": strings.TrimSpace(t.ModelID),
		}})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
