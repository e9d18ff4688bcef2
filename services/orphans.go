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
}

// Orphans lists containers labelled aima.managed=true whose service has no
// record. Containers without aima's label are never considered.
func (m *Manager) Orphans(ctx context.Context) ([]Orphan, error) {
	all, err := m.col.List(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, s := range all {
		known[s.ID] = true
	}
	containers, err := m.rt.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelManaged: "true"}})
	if err != nil {
		return nil, err
	}
	out := []Orphan{}
	for _, c := range containers {
		id := c.Labels[runtime.LabelService]
		if known[id] {
			continue
		}
		out = append(out, Orphan{ContainerID: c.ID, Name: c.Name, ServiceID: id, Status: c.Status, Image: c.Image})
	}
	return out, nil
}

// Prune removes the orphan containers (stopping them first) and returns
// what it removed.
func (m *Manager) Prune(ctx context.Context) ([]Orphan, error) {
	orphans, err := m.Orphans(ctx)
	if err != nil {
		return nil, err
	}
	removed := []Orphan{}
	for _, o := range orphans {
		if err := m.rt.RemoveContainer(ctx, o.ContainerID, runtime.RemoveOptions{Force: true}); err != nil {
			return removed, err
		}
		removed = append(removed, o)
	}
	return removed, nil
}
