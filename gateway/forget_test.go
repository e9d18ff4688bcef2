package gateway_test

import (
	"encoding/json"
	"testing"

	"aima/services"
	"aima/tools"
)

// TestDeleteForgetsEngineSamples: the engine-metrics scraper keeps a few
// samples per running service for its token rates; service_delete drops
// them (before, nothing called Scraper.Forget, so every deleted service
// that was ever scraped stayed in its table).
func TestDeleteForgetsEngineSamples(t *testing.T) {
	g := newGW(t, "")
	g.model(t, "qwen-forget")
	s := g.start(t, g.service(t, services.CreateSpec{ModelID: "qwen-forget"}).ID)
	scraper := g.Domain.EngineMetrics
	if f := scraper.Figures(t.Context(), s, g.Domain.Catalog); !f.ScrapeOK {
		t.Fatalf("scrape: %s", f.Error)
	}
	if n := scraper.Tracked(); n != 1 {
		t.Fatalf("the scraper remembers %d services, want 1", n)
	}
	op, _ := tools.Lookup("service_delete")
	raw, _ := json.Marshal(tools.ServiceRef{ServiceID: s.ID})
	if _, err := (tools.LocalCaller{Domain: g.Domain}).Call(t.Context(), op, raw, nil); err != nil {
		t.Fatal(err)
	}
	if n := scraper.Tracked(); n != 0 {
		t.Errorf("after the delete the scraper remembers %d services, want 0", n)
	}
}
