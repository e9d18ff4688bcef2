package services

import (
	"context"
	"errors"
	"slices"

	"aima/errs"
	"aima/gpu"
)

// GPUList reads the GPU inventory now and marks which services hold each
// GPU. A host without NVIDIA GPUs gets an empty list with a note; a broken
// driver is an Unavailable error.
func (m *Manager) GPUList(ctx context.Context) (gpu.Snapshot, error) {
	snap, err := m.opts.GPUs.Refresh(ctx)
	if err != nil {
		return gpu.Snapshot{}, err
	}
	held, err := m.heldLeases(ctx)
	if err != nil {
		return gpu.Snapshot{}, err
	}
	cordoned, err := m.Cordons(ctx)
	if err != nil {
		return gpu.Snapshot{}, err
	}
	snap = gpu.ClusterView(snap, held, cordoned)
	snap.Devices = slices.Clone(snap.Devices)
	for i := range snap.Devices {
		d := &snap.Devices[i]
		d.HeldBy, d.Cordon = nil, nil
		if c, ok := cordoned[d.UUID]; ok {
			d.Cordon = &c
		}
		for _, h := range held {
			if slices.ContainsFunc(h.Lease.Devices, func(l gpu.LeasedDevice) bool { return l.UUID == d.UUID }) {
				d.HeldBy = append(d.HeldBy, gpu.Holder{ServiceID: h.ServiceID, Name: h.Name, Fraction: h.Lease.Fraction, Sleeping: h.Dormant})
			}
		}
	}
	return snap, nil
}

// FitRequest asks whether a model would fit now.
type FitRequest struct {
	ModelID    string
	EngineType string
	Args       []string
	GPUs       string // default auto
}

// FitResult is the answer: the estimate, where a start now would be
// placed, or why not and what would make it fit.
type FitResult struct {
	Fits          bool               `json:"fits" jsonschema:"a start now would pass the schedule phase"`
	Estimate      gpu.Estimate       `json:"estimate"`
	GPUs          []gpu.LeasedDevice `json:"gpus,omitempty" jsonschema:"the GPUs a start now would get"`
	FitsOn        []int              `json:"fits_on" jsonschema:"indexes of every GPU the model fits on by itself now (one host; on a cluster see nodes)"`
	Node          string             `json:"node,omitempty" jsonschema:"on a cluster: the node a start now would be pinned to"`
	Nodes         []gpu.NodeFit      `json:"nodes,omitempty" jsonschema:"on a cluster: how the request fits each GPU node now (nodes placement skips say why)"`
	Decision      string             `json:"decision,omitempty" jsonschema:"the placement a start now would record"`
	Reason        string             `json:"reason,omitempty" jsonschema:"why it does not fit, with both figures in GiB"`
	Suggestion    string             `json:"suggestion,omitempty" jsonschema:"what would make it fit"`
	SuggestedArgs []string           `json:"suggested_args,omitempty" jsonschema:"engine args that would make it fit; pass them as args to service_create"`
	Note          string             `json:"note,omitempty" jsonschema:"set when there is no GPU inventory to check against"`
}

// Fit answers whether a model fits on the GPUs now, with the same
// estimate, policy and leases as a start's schedule phase, changing
// nothing.
func (m *Manager) Fit(ctx context.Context, r FitRequest) (FitResult, error) {
	if r.ModelID == "" {
		return FitResult{}, errs.Invalid("model_id", "model_id is required")
	}
	if r.EngineType == "" {
		r.EngineType = "vllm"
	}
	if r.GPUs == "" {
		r.GPUs = string(gpu.SelectAuto)
	}
	eng, err := m.catalog.Get(r.EngineType)
	if err != nil {
		return FitResult{}, err
	}
	if err := checkGPURequest(eng.Type, eng.Args, r.GPUs, r.Args, nil); err != nil {
		return FitResult{}, err
	}
	s := Service{ID: "", ModelID: r.ModelID, EngineType: eng.Type, GPUs: r.GPUs, Args: r.Args}
	if mod, err := m.models.Get(ctx, r.ModelID); err == nil {
		s.ModelID, s.ModelPath = mod.ID, mod.Path
	} else if !errs.Is(err, errs.NotFound) {
		return FitResult{}, err
	}
	req, snap, note, err := m.placementRequest(ctx, s, false, true)
	if err != nil {
		return FitResult{}, err
	}
	out := FitResult{FitsOn: []int{}, Note: note}
	if note != "" {
		out.Estimate, err = m.estimate(ctx, s.ModelID, s.ModelPath, s.EngineType, s.Args)
		return out, err
	}
	out.Estimate = req.Estimate
	held, err := m.heldLeases(ctx)
	if err != nil {
		return FitResult{}, err
	}
	for _, d := range snap.Devices {
		if snap.Cluster() {
			break // per node, below: a GPU by itself says little where a request's GPUs share a node
		}
		one := req
		one.Selection = gpu.Selection{Kind: gpu.SelectDevices, Devices: []string{d.UUID}}
		one.Estimate.TP = 1
		if _, err := gpu.Place(snap, held, one, m.opts.GPUPolicy); err == nil && !d.MIG() {
			out.FitsOn = append(out.FitsOn, d.Index)
		}
	}
	dec, err := gpu.Place(snap, held, req, m.opts.GPUPolicy)
	var ref *gpu.Refusal
	switch {
	case err == nil:
		out.Fits, out.GPUs, out.Decision, out.Node, out.Nodes = true, dec.Lease.Devices, dec.Message, dec.Lease.Node, dec.Nodes
	case errors.As(err, &ref):
		out.Reason, out.Suggestion, out.SuggestedArgs, out.Nodes = ref.Message, ref.Suggestion, ref.SuggestedArgs, ref.Nodes
	default:
		return FitResult{}, err
	}
	return out, nil
}
