package tools

import (
	"context"
	"fmt"
	"strings"

	"aima/enginemetrics"
	"aima/errs"
)

// serviceMetricsOp reads a running engine's own live figures from its
// Prometheus metrics (the same scrape client /metrics/engines uses).
func serviceMetricsOp() Op {
	return Declare(Spec[ServiceRef, enginemetrics.Figures]{
		Name: "service_metrics",
		Description: "Read a running service's live engine figures from the engine's own Prometheus metrics: requests running and waiting, " +
			"KV cache usage (0 to 1), token counters, and prompt and generation tokens per second (from the counters' increase between two reads; " +
			"the first read of a service takes about a second longer to measure it). The figures are the same for every engine type. " +
			"A service whose engine is not running (any status but running, unhealthy and sleeping), or an engine that does not answer, gives scrape_ok false with the reason in error, not a failure.",
		Annotations: Annotations{ReadOnly: true, Idempotent: true},
		Positional:  "service_id",
		Run: func(ctx context.Context, dom *Domain, in ServiceRef, _ Reporter) (enginemetrics.Figures, error) {
			if dom.EngineMetrics == nil {
				return enginemetrics.Figures{}, errs.New(errs.Unavailable, "engine metrics are not available in this daemon")
			}
			s, err := dom.Services.Get(ctx, in.ServiceID)
			if err != nil {
				return enginemetrics.Figures{}, err
			}
			return dom.EngineMetrics.Figures(ctx, s, dom.Catalog), nil
		},
		Render: renderFigures,
	})
}

func renderFigures(f enginemetrics.Figures) string {
	if !f.ScrapeOK {
		return fmt.Sprintf("%s (%s, %s): no figures: %s", f.ServiceID, f.Engine, f.Status, f.Error)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) at %s", f.ServiceID, f.Engine, f.ScrapedAt.Format("15:04:05"))
	line := func(label string, v *float64, format string) {
		if v != nil {
			fmt.Fprintf(&b, "\n  %-22s "+format, label, *v)
		}
	}
	line("requests running", f.RequestsRunning, "%.0f")
	line("requests waiting", f.RequestsWaiting, "%.0f")
	if f.KVCacheUsage != nil {
		fmt.Fprintf(&b, "\n  %-22s %.1f%%", "KV cache usage", *f.KVCacheUsage*100)
	}
	line("prompt tokens/s", f.PromptTokensPerSecond, "%.1f")
	line("generation tokens/s", f.GenerationTokensPerSecond, "%.1f")
	line("prompt tokens", f.PromptTokensTotal, "%.0f")
	line("generation tokens", f.GenerationTokensTotal, "%.0f")
	return b.String()
}
