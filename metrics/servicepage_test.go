package metrics_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"aima/services"
	"aima/tools"
)

// The service families are written by hand for the text format and parsed
// back for protobuf: both formats carry the same series, the text page has
// its families in name order (one block each), and a service's series
// follow its record: a start shows running, a delete removes them.
func TestServicePageFormats(t *testing.T) {
	t.Parallel()
	d := fakeDaemon(t, newFake(t), "")
	var ids []string
	for i := range 3 {
		s := call[services.Service](t, d.URL, "", "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm", Name: fmt.Sprintf("page-%d", i)})
		ids = append(ids, s.ID)
	}
	text := scrape(t, d.URL, "/metrics", "")
	promtoolCheck(t, text)
	if got := one(t, parse(t, text), "aima_service_status", map[string]string{"service": ids[0], "status": "created"}); got != 1 {
		t.Fatalf("created state %v", got)
	}

	call[tools.StartOutput](t, d.URL, "", "service_start", tools.ServiceStartInput{ServiceID: ids[0], Wait: true})
	await(t, d.URL, ids[0], services.StatusRunning)
	call[map[string]any](t, d.URL, "", "service_delete", tools.ServiceRef{ServiceID: ids[2]})

	text = scrape(t, d.URL, "/metrics", "")
	var names []string
	for line := range strings.Lines(text) {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("families out of name order: %v", names)
	}
	fams := parse(t, text)
	for st, want := range map[string]float64{"running": 1, "created": 0} {
		if got := one(t, fams, "aima_service_status", map[string]string{"service": ids[0], "status": st}); got != want {
			t.Errorf("started service: %s = %v, want %v", st, got, want)
		}
	}
	if n := len(find(fams, "aima_service_status", map[string]string{"service": ids[2]})); n != 0 {
		t.Errorf("deleted service still has %d status series", n)
	}
	if got := one(t, fams, "aima_service_records_up", nil); got != 1 {
		t.Errorf("records up %v", got)
	}

	proto := scrapeProto(t, d.URL)
	for _, name := range []string{"aima_service_status", "aima_service_restarts_total", "aima_service_records_up"} {
		if a, b := series(fams[name]), series(proto[name]); !slices.Equal(a, b) || len(a) == 0 {
			t.Errorf("%s: text %v\nprotobuf %v", name, a, b)
		}
		if fams[name].GetHelp() != proto[name].GetHelp() || fams[name].GetType() != proto[name].GetType() {
			t.Errorf("%s: help or type differ between formats", name)
		}
	}
	if proto["aima_build_info"] == nil || proto["aima_docker_up"] == nil {
		t.Error("protobuf scrape lacks the registry's families")
	}
}

// scrapeProto scrapes /metrics as a Prometheus configured for protobuf.
func scrapeProto(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/metrics", nil)
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("protobuf scrape: %d", resp.StatusCode)
	}
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() != expfmt.TypeProtoDelim {
		t.Fatalf("protobuf scrape answered %q", format)
	}
	dec := expfmt.NewDecoder(bufio.NewReader(resp.Body), format)
	out := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out[mf.GetName()] = mf
	}
}

// series are a family's series as sorted "labels value" strings.
func series(mf *dto.MetricFamily) []string {
	var out []string
	for _, m := range mf.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(ls)
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
		out = append(out, fmt.Sprint(ls, " ", v))
	}
	sort.Strings(out)
	return out
}
