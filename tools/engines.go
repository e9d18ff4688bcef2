package tools

import (
	"context"
	"fmt"

	"aima/engines"
)

func engineOps() []Op {
	return []Op{
		Declare(Spec[Empty, List[engines.Engine]]{
			Name:        "engine_list",
			Description: "List the inference engines aima can run (vllm, sglang, llamacpp) with the container image, port, health endpoint and default GPU assignment each uses, after the daemon's config overrides, and whether each can sleep (can_sleep: vllm and sglang free their GPU memory and stay up when idle; llamacpp has no sleep mode, so an idle release stops it and the next request starts it). Use an engine's type as engine_type when creating a service.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Run: func(_ context.Context, dom *Domain, _ Empty, _ Reporter) (List[engines.Engine], error) {
				return listOf(dom.Catalog.List()), nil
			},
			Render: func(l List[engines.Engine]) string {
				s := fmt.Sprintf("%d engine(s)", l.Total)
				for _, e := range l.Items {
					s += fmt.Sprintf("\n%s  %s  port %d  gpus %s", e.Type, e.Image, e.Port, e.GPUs)
				}
				return s
			},
		}),
	}
}

// HealthOutput reports the daemon's health.
type HealthOutput struct {
	Status  string `json:"status" jsonschema:"ok, or degraded when the Docker engine is unreachable"`
	Version string `json:"version" jsonschema:"aima version"`
	Docker  string `json:"docker" jsonschema:"ok, or why the Docker engine is unreachable"`
}

func healthOp() Op {
	return Declare(Spec[Empty, HealthOutput]{
		Name:        "health_check",
		Description: "Check that the aima daemon is up and that it can reach the Docker engine. Cheap; safe to call any time.",
		Annotations: Annotations{ReadOnly: true, Idempotent: true},
		Run: func(ctx context.Context, dom *Domain, _ Empty, _ Reporter) (HealthOutput, error) {
			out := HealthOutput{Status: "ok", Version: dom.Version, Docker: "ok"}
			if err := dom.Runtime.Ping(ctx); err != nil {
				out.Status, out.Docker = "degraded", err.Error()
			}
			return out, nil
		},
		Render: func(h HealthOutput) string {
			return fmt.Sprintf("aima %s: %s (docker: %s)", h.Version, h.Status, h.Docker)
		},
	})
}
