package services

import (
	"context"

	"aima/runtime"
)

// Orphan is a container labelled as aima's with no service record (left by
// a deleted data dir, another daemon, or a crash between create and record).
type Orphan struct {
	ContainerID string `json:"container_id"`
	Name        string `json:"name"`
	ServiceID   string `json:"service_id" jsonschema:"the aima.service label"`
	Status      string `json:"status" jsonschema:"Docker's container state"`
	Image       string `json:"image"`
	// OtherStore marks a container this store did not create: its
	// aima.store label names another store, or it has none.
	OtherStore bool `json:"other_store,omitempty" jsonschema:"created by another state store: another daemon's data dir, or a store that was lost or replaced (restore it with aima store restore); service_prune removes it only with force"`
}

// Orphans lists containers labelled aima.managed=true whose service has no
// record. Containers without aima's label are never considered, and neither
// are those of a damaged record (it still names them). An orphan this store
// did not create is marked OtherStore.
func (m *Manager) Orphans(ctx context.Context) ([]Orphan, error) {
	all, damaged, err := m.col.Scan(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, s := range all {
		known[s.ID] = true
	}
	for _, d := range damaged {
		known[d.ID] = true
	}
	containers, err := m.rt.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelManaged: "true"}})
	if err != nil {
		return nil, err
	}
	mine := m.storeID()
	out := []Orphan{}
	for _, c := range containers {
		id := c.Labels[runtime.LabelService]
		if known[id] {
			continue
		}
		store := c.Labels[runtime.LabelStore]
		out = append(out, Orphan{ContainerID: c.ID, Name: c.Name, ServiceID: id, Status: c.Status, Image: c.Image,
			OtherStore: mine == "" || store != mine})
	}
	return out, nil
}

// PruneResult says what Prune removed and what it kept.
type PruneResult struct {
	Removed []Orphan
	// Kept are orphans of another store, left alone without force.
	Kept []Orphan
}

// Prune removes the orphan containers (stopping them first). Orphans of
// another store (OtherStore: a lost store's engines, or another daemon's)
// are kept unless force is set: they are never removed silently.
func (m *Manager) Prune(ctx context.Context, force bool) (PruneResult, error) {
	orphans, err := m.Orphans(ctx)
	if err != nil {
		return PruneResult{}, err
	}
	res := PruneResult{Removed: []Orphan{}, Kept: []Orphan{}}
	for _, o := range orphans {
		if o.OtherStore && !force {
			res.Kept = append(res.Kept, o)
			continue
		}
		if err := m.rt.RemoveContainer(ctx, o.ContainerID, runtime.RemoveOptions{Force: true}); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, o)
	}
	return res, nil
}
