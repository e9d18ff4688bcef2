package metrics

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"aima/enginemetrics"
)

// Series is one family aima serves, as the reference lists it
// (docs/reference/metrics.md, written by `make docs`).
type Series struct {
	Path   string   // the route that serves it: Path or EnginesPath
	Name   string   // e.g. aima_service_status
	Type   string   // counter, gauge or histogram
	Labels []string // its labels, constant ones included
	Help   string
}

// Reference lists aima's own families: those of /metrics from the
// descriptors of the collectors New registers, then those /metrics/engines
// adds to the engines' own, in name order per route. A family whose type
// is not known here is an error, so a new series cannot go unlisted.
func Reference() ([]Series, error) {
	m := New("")
	types := m.familyTypes()
	descs := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range m.own {
			c.Describe(descs)
		}
		close(descs)
	}()
	var out []Series
	var missing []string
	for d := range descs {
		s, err := parseDesc(d)
		if err != nil {
			return nil, err
		}
		s.Path, s.Type = Path, types[s.Name]
		if s.Type == "" {
			missing = append(missing, s.Name)
		}
		out = append(out, s)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("metrics.Reference: no type known for %s: add it to familyTypes (metrics/reference.go)", strings.Join(missing, ", "))
	}
	slices.SortFunc(out, func(a, b Series) int { return strings.Compare(a.Name, b.Name) })
	for _, f := range mergeScrapes([]enginemetrics.Scrape{{}}) {
		if len(f.GetMetric()) == 0 {
			continue
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		out = append(out, Series{Path: EnginesPath, Name: f.GetName(), Type: strings.ToLower(f.GetType().String()), Labels: labels, Help: f.GetHelp()})
	}
	return out, nil
}

// familyTypes gives each family of /metrics its type: a Desc does not
// carry one (the metric written for it does). Vectors say theirs; the
// collectors that write const metrics and the hand-written service page are
// listed here.
func (m *Metrics) familyTypes() map[string]string {
	types := map[string]string{}
	describe := func(typ string, cs ...prometheus.Collector) {
		ch := make(chan *prometheus.Desc, 16)
		go func() {
			for _, c := range cs {
				c.Describe(ch)
			}
			close(ch)
		}()
		for d := range ch {
			if s, err := parseDesc(d); err == nil {
				types[s.Name] = typ
			}
		}
	}
	l, g, o := m.lifecycle, m.lifecycle.gateway, m.ops
	for _, c := range []prometheus.Collector{l.phase, l.ready, l.failures, g.requests, g.tokens, g.duration, g.ttft, o.total, o.duration} {
		switch c.(type) {
		case *prometheus.CounterVec:
			describe("counter", c)
		case *prometheus.GaugeVec:
			describe("gauge", c)
		case *prometheus.HistogramVec:
			describe("histogram", c)
		}
	}
	describe("gauge", m.own[0]) // aima_build_info
	constTypes := map[*prometheus.Desc]string{
		dockerUpDesc: "gauge", busPublishedDesc: "counter", busDeliveredDesc: "counter", busSubscribersDesc: "gauge",
		busServicesDesc: "gauge", busLagDesc: "histogram", busSocketDesc: "histogram",
		gpuUpDesc: "gauge", gpuReadDesc: "gauge", gpuTotalDesc: "gauge", gpuUsedDesc: "gauge", gpuUtilDesc: "gauge", gpuCordonedDesc: "gauge",
		connOpenDesc: "gauge", connRefusedDesc: "counter",
	}
	for d, typ := range constTypes {
		if s, err := parseDesc(d); err == nil {
			types[s.Name] = typ
		}
	}
	for _, f := range pageFamilies {
		_, typ, _ := strings.Cut(string(f.header), "# TYPE "+f.name+" ")
		types[f.name] = strings.TrimSpace(typ)
	}
	return types
}

// descFields reads a Desc's String(), the only way client_golang shows
// its name, help and labels.
var descFields = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), unit: "[^"]*", constLabels: \{(.*)\}, variableLabels: \{(.*)\}\}$`)

func parseDesc(d *prometheus.Desc) (Series, error) {
	f := descFields.FindStringSubmatch(d.String())
	if f == nil {
		return Series{}, fmt.Errorf("metrics.Reference: cannot read %s", d)
	}
	name, err1 := strconv.Unquote(f[1])
	help, err2 := strconv.Unquote(f[2])
	if err1 != nil || err2 != nil {
		return Series{}, fmt.Errorf("metrics.Reference: cannot read %s", d)
	}
	var labels []string
	for _, kv := range regexp.MustCompile(`(\w+)="(?:[^"\\]|\\.)*"`).FindAllStringSubmatch(f[3], -1) {
		labels = append(labels, kv[1])
	}
	if f[4] != "" {
		labels = append(labels, strings.Split(f[4], ",")...)
	}
	return Series{Name: name, Help: help, Labels: labels}, nil
}
