package services

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
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

// cordonKey is the record ID of a GPU's cordon: its UUID, with a cluster
// GPU's "node/index" written "node:index" (a record ID has no "/"; a node
// name has no ":"), or its SHA-256 when a long node name makes it too
// long for an ID. The record itself keeps the UUID as it is.
func cordonKey(uuid string) string {
	k := strings.ReplaceAll(uuid, "/", ":")
	if state.ValidateID(k) != nil {
		sum := sha256.Sum256([]byte(uuid))
		k = "sha256-" + hex.EncodeToString(sum[:])
	}
	return k
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

// CordonResult is what gpu_cordon or gpu_uncordon did: the GPU named, or
// on a cluster every GPU of the node named.
type CordonResult struct {
	Node    string       `json:"node,omitempty" jsonschema:"on a cluster: the node named, when a node's name was given (every GPU of it)"`
	GPUs    []string     `json:"gpus" jsonschema:"UUIDs of the GPUs named"`
	Cordons []gpu.Cordon `json:"cordons" jsonschema:"gpu_cordon: each GPU's cordon; gpu_uncordon: the cordons removed (none when no GPU named was cordoned)"`
}

// Text names what was named in messages: "GPU 1", "GPU 0 on node gpu-a"
// or "node gpu-a".
func (r CordonResult) Text() string { return namedText(r.Node, r.GPUs, r.Cordons) }

// namedText names a cordon's target: the node, or its one GPU.
func namedText(node string, uuids []string, cs []gpu.Cordon) string {
	switch {
	case node != "":
		return "node " + node
	case len(cs) > 0 && cs[0].Node != "":
		return fmt.Sprintf("GPU %d on node %s", cs[0].Index, cs[0].Node)
	case len(cs) > 0:
		return fmt.Sprintf("GPU %d", cs[0].Index)
	case len(uuids) > 0:
		return "GPU " + uuids[0]
	}
	return "no GPU"
}

// findGPUs resolves what the operator named against the inventory: on one
// host an index or a UUID; on a cluster a GPU's UUID (node/index) or a
// node's name (each of its GPUs, and node is set). See gpu.Snapshot.Named.
func (m *Manager) findGPUs(ctx context.Context, id string) (devs []gpu.Device, node string, cluster bool, err error) {
	if id == "" {
		return nil, "", false, errs.Invalid("gpu", "gpu is required (an index or a GPU-… UUID from gpu_list; on Kubernetes a node's name or node/index)")
	}
	snap, err := m.opts.GPUs.Refresh(ctx)
	if err != nil {
		return nil, "", false, err
	}
	devs, node = snap.Named(id)
	return devs, node, snap.Cluster(), nil
}

// notFound is the error for a GPU or node the inventory lacks.
func notFound(id string, cluster bool) error {
	if cluster {
		return errs.NotFoundf("no GPU node or GPU named %s in the cluster (name a node or a node/index from gpu_list)", truncate(id, 60))
	}
	return errs.NotFoundf("GPU %s does not exist on this host (see gpu_list)", truncate(id, 60))
}

// Cordon marks a GPU (index or UUID; on a cluster node/index, or a node's
// name for each of its GPUs) as taking no new lease. Cordoning a cordoned
// GPU updates its reason. Services that hold it are told in their events;
// they keep running. aima never changes a Kubernetes Node: the cordon is
// its own record, read by its own placement.
func (m *Manager) Cordon(ctx context.Context, id, reason string) (CordonResult, error) {
	if len(reason) > maxCordonReason || !utf8.ValidString(reason) || strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 }) {
		return CordonResult{}, errs.Invalid("reason", "reason: at most %d bytes of printable text", maxCordonReason)
	}
	devs, node, cluster, err := m.findGPUs(ctx, id)
	if err != nil {
		return CordonResult{}, err
	}
	if len(devs) == 0 {
		return CordonResult{}, notFound(id, cluster)
	}
	m.placeMu.Lock() // a placement in progress sees the GPUs either free or cordoned, never half
	defer m.placeMu.Unlock()
	res := CordonResult{Node: node, GPUs: make([]string, 0, len(devs)), Cordons: make([]gpu.Cordon, 0, len(devs))}
	at := m.now().UTC()
	for _, d := range devs {
		c := gpu.Cordon{UUID: d.UUID, Index: d.Index, Node: d.Node, Reason: reason, At: at}
		if err := m.cordonCol().Put(ctx, cordonKey(d.UUID), c); err != nil {
			return res, err
		}
		res.GPUs, res.Cordons = append(res.GPUs, d.UUID), append(res.Cordons, c)
	}
	m.tellHolders(ctx, res.GPUs, fmt.Sprintf("%s was %s: it takes no new service; this one keeps running on it until it is stopped or drained",
		res.Text(), res.Cordons[0].Text()))
	return res, nil
}

// Uncordon returns a GPU (or on a cluster each GPU of a node) to service.
// Uncordoning a GPU that is not cordoned does nothing. A GPU or node the
// inventory no longer lists is found by its cordon records, so a cordon
// never outlives its hardware's removal.
func (m *Manager) Uncordon(ctx context.Context, id string) (CordonResult, error) {
	devs, node, cluster, err := m.findGPUs(ctx, id)
	if err != nil {
		return CordonResult{}, err
	}
	cordons, err := m.Cordons(ctx)
	if err != nil {
		return CordonResult{}, err
	}
	res := CordonResult{Node: node, GPUs: []string{}, Cordons: []gpu.Cordon{}}
	for _, d := range devs {
		res.GPUs = append(res.GPUs, d.UUID)
	}
	if len(devs) == 0 { // gone from the inventory: its records name it
		for _, c := range cordons {
			if strings.EqualFold(c.UUID, id) || (c.Node != "" && c.Node == id) {
				res.GPUs = append(res.GPUs, c.UUID)
				if c.Node == id {
					res.Node = id
				}
			}
		}
		slices.Sort(res.GPUs)
	}
	if len(res.GPUs) == 0 {
		return CordonResult{}, notFound(id, cluster)
	}
	for _, u := range res.GPUs {
		c, ok := cordons[u]
		if !ok {
			continue
		}
		if err := m.cordonCol().Delete(ctx, cordonKey(u)); err != nil && !errs.Is(err, errs.NotFound) {
			return res, err
		}
		res.Cordons = append(res.Cordons, c)
	}
	return res, nil
}

// tellHolders publishes msg once in the events of every service holding
// one of the GPUs.
func (m *Manager) tellHolders(ctx context.Context, uuids []string, msg string) {
	for _, s := range m.holdersOf(ctx, uuids) {
		m.bus.Publish(events.Event{ServiceID: s.ID, Run: s.Run, Type: events.TypeMessage, Status: string(s.Status), Message: msg})
	}
}

// holdersOf are the services whose lease names one of the GPUs, oldest
// first, each once.
func (m *Manager) holdersOf(ctx context.Context, uuids []string) []Service {
	all, err := m.List(ctx, "")
	if err != nil {
		return nil
	}
	var out []Service
	for _, s := range all {
		if s.GPULease == nil {
			continue
		}
		if slices.ContainsFunc(s.GPULease.Devices, func(d gpu.LeasedDevice) bool { return slices.Contains(uuids, d.UUID) }) {
			out = append(out, s)
		}
	}
	return out
}
