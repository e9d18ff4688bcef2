package tools

import (
	"context"
	"fmt"
	"strings"

	"aima/gpu"
	"aima/services"
)

// GPUListOutput is the GPU inventory.
type GPUListOutput struct {
	Items []gpu.Device `json:"items" jsonschema:"the GPUs, by index (on a cluster: by node, then index)"`
	Total int          `json:"total" jsonschema:"number of GPUs"`
	Nodes []gpu.Node   `json:"nodes,omitempty" jsonschema:"on Kubernetes: each GPU node aima's Pods may use, with its GPU Feature Discovery figures, what Pods request there, the GPUs free for a start, and why placement skips it"`
	Note  string       `json:"note,omitempty" jsonschema:"why the list is empty on a host without NVIDIA GPUs"`
}

// ModelFitInput asks whether a model fits.
type ModelFitInput struct {
	ModelID    string   `json:"model_id" jsonschema:"a registered model's id or name (its files are read for the estimate), or a remote reference (only the overhead is known)"`
	EngineType string   `json:"engine_type,omitempty" jsonschema:"engine type from engine_list (default vllm)"`
	Args       []string `json:"args,omitempty" jsonschema:"engine args as they would be given to service_create, e.g. --max-model-len=8192 --tensor-parallel-size=2 --gpu-memory-utilization=0.45 (vllm), --context-length=8192 --mem-fraction-static=0.8 (sglang), -ngl 20 -c 8192 (llamacpp)"`
	GPUs       string   `json:"gpus,omitempty" jsonschema:"GPU request as for service_create: auto (default: the tensor-parallel size), all, N, or device=ID[,ID...]"`
}

func gpuMemory(d gpu.Device) string {
	if !d.MemoryKnown() {
		return "memory not reported"
	}
	return fmt.Sprintf("%s used, %s", gpu.BytesText(d.MemoryUsedBytes), d.MemoryText())
}

func holders(d gpu.Device) string {
	var hs []string
	for _, h := range d.HeldBy {
		hs = append(hs, fmt.Sprintf("%s (%.2f)", h.ServiceID, h.Fraction))
	}
	return strings.Join(hs, ", ")
}

// renderNodes is gpu_list on a cluster: a line per node, then its GPUs
// that something holds or requests.
func renderNodes(o GPUListOutput) string {
	var b strings.Builder
	for _, n := range o.Nodes {
		mem := "memory not labelled"
		if n.MemoryPerGPUBytes != nil {
			mem = gpu.BytesText(n.MemoryPerGPUBytes) + " each"
		}
		fmt.Fprintf(&b, "node %s  %d × %s  %s  free %d/%d  (aima Pods request %d, other Pods %d)", n.Name, n.GPUs, n.Product, mem, n.Free, n.GPUs, n.RequestedByAima, n.RequestedByOthers)
		switch {
		case n.Skipped != "":
			b.WriteString("  SKIPPED: " + n.Skipped)
		case !n.Ready:
			b.WriteString("  not ready")
		}
		switch {
		case n.Cordoned > 0 && n.Cordoned == n.GPUs:
			b.WriteString("  CORDONED in aima (every GPU)")
		case n.Cordoned > 0:
			fmt.Fprintf(&b, "  %d GPU(s) cordoned in aima", n.Cordoned)
		}
		b.WriteString("\n")
		for _, d := range o.Items {
			if d.Node != n.Name {
				continue
			}
			var says []string
			if h := holders(d); h != "" {
				says = append(says, "held by "+h)
			}
			if d.RequestedBy != "" {
				says = append(says, "requested by "+d.RequestedBy)
			}
			if d.Cordon != nil {
				says = append(says, d.Cordon.Text())
			}
			if len(says) > 0 {
				fmt.Fprintf(&b, "  GPU %d  %s\n", d.Index, strings.Join(says, "; "))
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func gpuOps() []Op {
	return []Op{
		Declare(Spec[Empty, GPUListOutput]{
			Name:        "gpu_list",
			Description: "List the host's NVIDIA GPUs, read now from the driver (nvidia-smi): index, UUID, name, memory total/used/free in bytes, utilization, temperature, power, driver and CUDA version, compute capability, MIG mode, the compute processes on each, and which aima services hold a lease on it. A host without NVIDIA GPUs gets an empty list and a note; a broken or hung driver is an unavailable error. On Kubernetes (runtime: kubernetes) it lists each GPU node's GPUs instead (uuid node/index): model and memory from the GPU Feature Discovery labels, allocatable nvidia.com/gpu minus what the node's non-terminated Pods request (aima's and others'), which aima services hold them, and the nodes placement skips (not ready, cordoned, a taint not tolerated), marked, with the GPUs cordoned in aima (gpu_cordon) per node. Use it before service_create to choose gpus, and model_fit to check a model.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Run: func(ctx context.Context, dom *Domain, _ Empty, _ Reporter) (GPUListOutput, error) {
				snap, err := dom.Services.GPUList(ctx)
				if err != nil {
					return GPUListOutput{}, err
				}
				items := snap.Devices
				if items == nil {
					items = []gpu.Device{}
				}
				return GPUListOutput{Items: items, Total: len(items), Nodes: snap.Nodes, Note: snap.Note}, nil
			},
			Render: func(o GPUListOutput) string {
				if o.Total == 0 {
					return "no GPUs: " + o.Note
				}
				if len(o.Nodes) > 0 {
					return renderNodes(o)
				}
				var b strings.Builder
				for _, d := range o.Items {
					fmt.Fprintf(&b, "GPU %d  %s  %s  %s", d.Index, d.UUID, d.Name, gpuMemory(d))
					if h := holders(d); h != "" {
						b.WriteString("  held by " + h)
					}
					if d.Cordon != nil {
						b.WriteString("  " + d.Cordon.Text())
					}
					b.WriteString("\n")
				}
				return strings.TrimRight(b.String(), "\n")
			},
		}),
		Declare(Spec[ModelFitInput, services.FitResult]{
			Name:        "model_fit",
			Description: "Check whether a model would fit on this host's GPUs now, without starting anything: estimates the memory it needs from its files (weights from model.safetensors.index.json or the weight files or the GGUF header, KV cache per token from config.json or the GGUF header, and the engine's args: vLLM's --tensor-parallel-size, --gpu-memory-utilization, --max-model-len; SGLang's --tp-size, --mem-fraction-static (which holds weights and KV pool), --context-length; llama.cpp's -ngl (only the offloaded layers and their KV share on the GPU), -c), applies the engine's rule against the GPUs' free memory and the leases of running services, and says which GPUs a start would get, or why not (both figures in GiB) with suggested args that would fit. On Kubernetes it answers per node (a request's GPUs are on one node): the node a start would be pinned to by gpu_policy, and for every GPU node whether it fits and why not (a node skipped, or cordoned in aima by gpu_cordon, says so). service_start runs the same check in its schedule phase.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Positional:  "model_id",
			Run: func(ctx context.Context, dom *Domain, in ModelFitInput, _ Reporter) (services.FitResult, error) {
				return dom.Services.Fit(ctx, services.FitRequest{ModelID: in.ModelID, EngineType: in.EngineType, Args: in.Args, GPUs: in.GPUs})
			},
			Render: func(r services.FitResult) string {
				s := "estimate: " + r.Estimate.Text()
				switch {
				case r.Note != "":
					s += "\n" + r.Note
				case r.Fits:
					s += "\nfits: " + r.Decision
				default:
					s += "\ndoes not fit: " + r.Reason
					if r.Suggestion != "" {
						s += "\nsuggestion: " + r.Suggestion
					}
				}
				for _, n := range r.Nodes {
					if !r.Fits {
						break // the reason gives every node's figures
					}
					if n.Fits {
						s += fmt.Sprintf("\nnode %s: fits (%d of %d GPUs)", n.Node, n.Fit, n.GPUs)
					} else {
						s += fmt.Sprintf("\nnode %s: does not fit: %s", n.Node, n.Reason)
					}
				}
				for _, n := range r.Estimate.Notes {
					s += "\nnote: " + n
				}
				return s
			},
		}),
	}
}
