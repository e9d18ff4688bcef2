package metrics

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"aima/gpu"
	"aima/services"
)

// A service's hand-written lines escape what the text format needs escaped
// and read back as the record's values, whatever its ID and engine hold.
func TestRenderRowsEscapes(t *testing.T) {
	odd := "a\"b\\c\nd\xffe"
	s := services.Service{ID: odd, EngineType: `en"g`, Status: services.StatusSleeping, RestartCount: 3,
		GPULease: &gpu.Lease{Fraction: 0.25, Devices: []gpu.LeasedDevice{{Index: 1, UUID: `GPU-"1"`}}}}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	snap := pageSnapshot{up: true, rows: []*serviceRows{renderRows(&s)}}
	for f := range famCount {
		snap.write(w, f)
	}
	_ = w.Flush()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	wantID := "a\"b\\c\nd\uFFFDe"
	labels := func(name string, i int) map[string]string {
		out := map[string]string{}
		for _, l := range fams[name].GetMetric()[i].GetLabel() {
			out[l.GetName()] = l.GetValue()
		}
		return out
	}
	if n := len(fams[statusName].GetMetric()); n != len(services.AllStatuses) {
		t.Fatalf("%d status series", n)
	}
	for i, m := range fams[statusName].GetMetric() {
		l := labels(statusName, i)
		if l["service"] != wantID || l["engine"] != `en"g` {
			t.Errorf("status labels %q", l)
		}
		if want := l["status"] == string(services.StatusSleeping); (m.GetGauge().GetValue() == 1) != want {
			t.Errorf("status %s = %v", l["status"], m.GetGauge().GetValue())
		}
	}
	if v := fams[restartsName].GetMetric()[0].GetCounter().GetValue(); v != 3 {
		t.Errorf("restarts %v", v)
	}
	if l := labels(leaseName, 0); l["uuid"] != `GPU-"1"` || l["gpu"] != "1" || l["sleeping"] != "true" || l["service"] != wantID {
		t.Errorf("lease labels %q", l)
	}
	if v := fams[leaseName].GetMetric()[0].GetGauge().GetValue(); v != 0.25 {
		t.Errorf("lease fraction %v", v)
	}
}
