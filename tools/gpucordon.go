package tools

import (
	"context"
	"fmt"
	"strings"

	"aima/events"
	"aima/services"
)

// GPUCordonInput names a GPU to cordon.
type GPUCordonInput struct {
	GPU    string `json:"gpu" jsonschema:"the GPU: its index or its GPU-… UUID, as gpu_list shows; on Kubernetes a GPU node/index, or a node's name for every GPU of the node"`
	Reason string `json:"reason,omitempty" jsonschema:"why, for people reading gpu_list and the services' events, e.g. 'fan failing'"`
}

// GPURef names a GPU.
type GPURef struct {
	GPU string `json:"gpu" jsonschema:"the GPU: its index or its GPU-… UUID, as gpu_list shows; on Kubernetes a GPU node/index, or a node's name for every GPU of the node"`
}

// GPUDrainInput names a GPU to drain.
type GPUDrainInput struct {
	GPU                 string `json:"gpu" jsonschema:"the GPU: its index or its GPU-… UUID, as gpu_list shows; on Kubernetes a GPU node/index, or a node's name for every GPU of the node"`
	Reason              string `json:"reason,omitempty" jsonschema:"why, recorded on the cordon"`
	GraceSeconds        int    `json:"grace_seconds,omitempty" jsonschema:"how long each service's inference requests in flight may take before it is stopped anyway (default 60)"`
	StartTimeoutSeconds int    `json:"start_timeout_seconds,omitempty" jsonschema:"deadline of each start on another GPU (default: the daemon's start_timeout)"`
}

func gpuCordonOps() []Op {
	return []Op{
		Declare(Spec[GPUCordonInput, services.CordonResult]{
			Name:        "gpu_cordon",
			Description: "Cordon a GPU: it takes no new service (starts, on-demand starts and model_fit skip it and say it is cordoned, even with force) until gpu_uncordon. Services already on it keep running and are told in their events; gpu_drain moves them. Persisted across daemon restarts; gpu_list, /metrics and the dashboard show it. Cordoning a cordoned GPU updates its reason. On Kubernetes (runtime: kubernetes) name a GPU as node/index, or a node's name to cordon every GPU of the node: placement then skips the node and says so; the cordon is aima's own record, the Kubernetes Node is never changed. Unknown GPUs and nodes are not_found errors.",
			Annotations: Annotations{Idempotent: true},
			Positional:  "gpu",
			Run: func(ctx context.Context, dom *Domain, in GPUCordonInput, _ Reporter) (services.CordonResult, error) {
				return dom.Services.Cordon(ctx, in.GPU, in.Reason)
			},
			Render: func(r services.CordonResult) string {
				text := "cordoned"
				if len(r.Cordons) > 0 {
					text = r.Cordons[0].Text()
				}
				return fmt.Sprintf("%s (%s) %s", r.Text(), strings.Join(r.GPUs, ", "), text)
			},
		}),
		Declare(Spec[GPURef, services.CordonResult]{
			Name:        "gpu_uncordon",
			Description: "Return a cordoned GPU to service (on Kubernetes: a GPU node/index, or a node's name for every GPU of the node): starts may be placed on it again. Services a drain stopped stay stopped (start them, or let their next request start them if on demand). Uncordoning a GPU that is not cordoned is a no-op; a cordoned GPU or node no longer in the inventory is found by its cordon.",
			Annotations: Annotations{Idempotent: true},
			Positional:  "gpu",
			Run: func(ctx context.Context, dom *Domain, in GPURef, _ Reporter) (services.CordonResult, error) {
				return dom.Services.Uncordon(ctx, in.GPU)
			},
			Render: func(r services.CordonResult) string {
				if len(r.Cordons) == 0 {
					return fmt.Sprintf("%s (%s) was not cordoned", r.Text(), strings.Join(r.GPUs, ", "))
				}
				return fmt.Sprintf("%s (%s) uncordoned", r.Text(), strings.Join(r.GPUs, ", "))
			},
		}),
		Declare(Spec[GPUDrainInput, services.DrainResult]{
			Name:        "gpu_drain",
			Description: "Drain a GPU: cordon it, then move every service holding it, one at a time. Each stops admitting new inference requests (they wait, they do not fail), lets those in flight finish (up to grace_seconds), stops, and, if it was running and another GPU can take it, starts again there (the waiting requests are then answered there). A service that was not running, or that no other GPU can take, stays stopped with the reason. Every step is an event of the service and is reported as progress; the result lists each service's outcome (moved, stopped or failed). The GPU stays cordoned. On Kubernetes name a GPU as node/index, or a node's name to drain the whole node: each service's Pod is deleted and a new one started on another node that fits (gpu_policy), with its new node in the result.",
			Annotations: Annotations{LongRunning: true},
			Positional:  "gpu",
			Run: func(ctx context.Context, dom *Domain, in GPUDrainInput, rep Reporter) (services.DrainResult, error) {
				grace, err := timeoutOf(in.GraceSeconds, "grace_seconds")
				if err != nil {
					return services.DrainResult{}, err
				}
				start, err := timeoutOf(in.StartTimeoutSeconds, "start_timeout_seconds")
				if err != nil {
					return services.DrainResult{}, err
				}
				return dom.Services.Drain(ctx, in.GPU, services.DrainOptions{Reason: in.Reason, Grace: grace, StartTimeout: start,
					OnEvent: func(ev events.Event) { rep.Event(ev) }})
			},
			Render: func(r services.DrainResult) string {
				var b strings.Builder
				c := services.CordonResult{Node: r.Node, Cordons: r.Cordons}
				for _, x := range r.Cordons {
					c.GPUs = append(c.GPUs, x.UUID)
				}
				text := "cordoned"
				if len(r.Cordons) > 0 {
					text = r.Cordons[0].Text()
				}
				fmt.Fprintf(&b, "%s (%s) %s", c.Text(), strings.Join(c.GPUs, ", "), text)
				if len(r.Moves) == 0 {
					b.WriteString("; no service held it")
				}
				for _, mv := range r.Moves {
					fmt.Fprintf(&b, "\n  %s (%s, was %s): %s", mv.ServiceID, mv.Name, mv.Was, mv.Outcome)
					if mv.To != "" {
						b.WriteString(" to GPU " + mv.To)
					}
					if mv.Node != "" {
						b.WriteString(" on node " + mv.Node)
					}
					if mv.Reason != "" {
						b.WriteString(": " + mv.Reason)
					}
				}
				return b.String()
			},
		}),
	}
}
