package metrics_test

import (
	"slices"
	"testing"

	"aima/metrics"
)

// TestReferenceListsEverySeries: the reference (make docs) lists every
// family of /metrics with a type, and the families /metrics/engines adds.
func TestReferenceListsEverySeries(t *testing.T) {
	t.Parallel()
	ref, err := metrics.Reference()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]metrics.Series{}
	for _, s := range ref {
		if s.Type == "" || s.Help == "" {
			t.Errorf("%s: type %q, help %q", s.Name, s.Type, s.Help)
		}
		byName[s.Name] = s
	}
	for name, want := range map[string]struct {
		path, typ string
		labels    []string
	}{
		"aima_build_info":                          {metrics.Path, "gauge", []string{"goversion", "version"}},
		"aima_event_bus_services":                  {metrics.Path, "gauge", nil},
		"aima_service_status":                      {metrics.Path, "gauge", []string{"service", "engine", "status"}},
		"aima_service_restarts_total":              {metrics.Path, "counter", []string{"service", "engine"}},
		"aima_operations_total":                    {metrics.Path, "counter", []string{"operation", "frontend", "kind"}},
		"aima_gateway_request_duration_seconds":    {metrics.Path, "histogram", []string{"endpoint"}},
		"aima_event_bus_publish_to_socket_seconds": {metrics.Path, "histogram", nil},
		"aima_engine_scrape_up":                    {metrics.EnginesPath, "gauge", []string{"aima_engine", "aima_service"}},
	} {
		got, ok := byName[name]
		if !ok {
			t.Errorf("the reference lacks %s", name)
			continue
		}
		if got.Path != want.path || got.Type != want.typ || !slices.Equal(got.Labels, want.labels) {
			t.Errorf("%s: %+v, want %s %s %v", name, got, want.path, want.typ, want.labels)
		}
	}
}
