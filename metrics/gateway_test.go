package metrics_test

import (
	"math"
	"testing"

	"aima/events"
	"aima/metrics"
)

// A request record with a negative token count (an engine's usage the
// gateway failed to refuse) must not panic the counter, which the bus's
// observer would otherwise turn into a wedged service; nothing negative
// is counted.
func TestGatewayTokensNeverDecrease(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	m.Observe(events.Event{ServiceID: "svc-1", Type: events.TypeRequest, Request: &events.Request{
		Endpoint: "/v1/chat/completions", Model: "qb", Code: 200, Stream: true, TokensIn: math.MaxInt64, TokensOut: -5}})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "aima_gateway_tokens_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "direction" {
					got[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
	}
	if got["out"] != 0 || got["in"] != math.MaxInt64 {
		t.Fatalf("tokens counted %v, want out 0 and in as recorded", got)
	}
}
