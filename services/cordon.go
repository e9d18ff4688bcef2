package services

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"aima/errs"
	"aima/events"
	"aima/gpu"
	"aima/state"
)

// Cordoning a GPU: the record is kept in the state store (one per GPU,
// keyed by UUID) so it survives daemon restarts; placement reads it on
// every start, wake and fit check (gpu.Request.Cordoned). Cordoning never
// touches what already holds the GPU; Drain moves it.

// cordonPrefix is the store prefix of the cordon records.
const cordonPrefix = "gpu-cordons/"

// maxCordonReason bounds the operator's reason text.
const maxCordonReason = 512

func (m *Manager) cordonCol() *state.Collection[gpu.Cordon] {
	return state.NewCollection[gpu.Cordon](m.store, cordonPrefix, "GPU cordon")
}

// Cordons lists the cordoned GPUs by UUID.
func (m *Manager) Cordons(ctx context.Context) (map[string]gpu.Cordon, error) {
	list, err := m.cordonCol().List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]gpu.Cordon, len(list))
	for _, c := range list {
		out[c.UUID] = c
	}
	return out, nil
}

// findGPU resolves an index or UUID against the inventory.
func (m *Manager) findGPU(ctx context.Context, id string) (gpu.Device, error) {
	if id == "" {
		return gpu.Device{}, errs.Invalid("gpu", "gpu is required (an index or a GPU-… UUID from gpu_list)")
	}
	snap, err := m.opts.GPUs.Refresh(ctx)
	if err != nil {
		return gpu.Device{}, err
	}
	d, ok := snap.Find(id)
	if !ok {
		return gpu.Device{}, errs.NotFoundf("GPU %s does not exist on this host (see gpu_list)", truncate(id, 60))
	}
	return d, nil
}

// Cordon marks a GPU (index or UUID) as taking no new lease. Cordoning a
// cordoned GPU updates its reason. Services that hold it are told in their
// events; they keep running.
func (m *Manager) Cordon(ctx context.Context, id, reason string) (gpu.Cordon, error) {
	if len(reason) > maxCordonReason || !utf8.ValidString(reason) || strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 }) {
		return gpu.Cordon{}, errs.Invalid("reason", "reason: at most %d bytes of printable text", maxCordonReason)
	}
	d, err := m.findGPU(ctx, id)
	if err != nil {
		return gpu.Cordon{}, err
	}
	m.placeMu.Lock() // a placement in progress sees the GPU either free or cordoned, never half
	defer m.placeMu.Unlock()
	c := gpu.Cordon{UUID: d.UUID, Index: d.Index, Reason: reason, At: m.now().UTC()}
	if err := m.cordonCol().Put(ctx, d.UUID, c); err != nil {
		return gpu.Cordon{}, err
	}
	m.tellHolders(ctx, d.UUID, fmt.Sprintf("GPU %d was %s: it takes no new service; this one keeps running on it until it is stopped or drained", d.Index, c.Text()))
	return c, nil
}

// Uncordon returns a GPU to service. Uncordoning a GPU that is not
// cordoned does nothing.
func (m *Manager) Uncordon(ctx context.Context, id string) (gpu.Device, error) {
	d, err := m.findGPU(ctx, id)
	if err != nil {
		return gpu.Device{}, err
	}
	if err := m.cordonCol().Delete(ctx, d.UUID); err != nil && !errs.Is(err, errs.NotFound) {
		return gpu.Device{}, err
	}
	m.serving.notify() // waiters for room look again
	return d, nil
}

// tellHolders publishes msg in the events of every service holding the GPU.
func (m *Manager) tellHolders(ctx context.Context, uuid, msg string) {
	for _, s := range m.holdersOf(ctx, uuid) {
		m.bus.Publish(events.Event{ServiceID: s.ID, Run: s.Run, Type: events.TypeMessage, Status: string(s.Status), Message: msg})
	}
}

// holdersOf are the services whose lease names the GPU, oldest first.
func (m *Manager) holdersOf(ctx context.Context, uuid string) []Service {
	all, err := m.List(ctx, "")
	if err != nil {
		return nil
	}
	var out []Service
	for _, s := range all {
		if s.GPULease == nil {
			continue
		}
		for _, d := range s.GPULease.Devices {
			if d.UUID == uuid {
				out = append(out, s)
				break
			}
		}
	}
	return out
}
