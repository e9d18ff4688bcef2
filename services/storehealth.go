package services

import (
	"context"
	"fmt"
	"strings"

	"aima/state"
)

// StoreHealth is what an operator must know about the state store: where it
// is and its backup, the records it cannot read, and containers labelled as
// aima's that it did not create (a lost store's engines, or another
// daemon's). The daemon logs the warnings at start-up; doctor shows them.
type StoreHealth struct {
	Info     state.Info      `json:"info"`
	Damaged  []state.Damaged `json:"damaged" jsonschema:"service and model records that cannot be read: left out of lists, reconcile and liveness until deleted"`
	Warnings []string        `json:"warnings" jsonschema:"what needs the operator's attention, with what to do"`
}

// StoreHealth reports on the store. orphans are the current orphan
// containers (nil when Docker could not be asked).
//
// The manager's own store is described; the model registry is expected to
// share it (the daemon builds both on one store).
func (m *Manager) StoreHealth(ctx context.Context, orphans []Orphan) (StoreHealth, error) {
	h := StoreHealth{Info: state.Describe(m.store), Damaged: []state.Damaged{}, Warnings: []string{}}
	svc, err := m.Damaged(ctx)
	if err != nil {
		return h, err
	}
	mod, err := m.models.Damaged(ctx)
	if err != nil {
		return h, err
	}
	h.Damaged = append(append(h.Damaged, svc...), mod...)
	for _, d := range h.Damaged {
		h.Warnings = append(h.Warnings, fmt.Sprintf("%s record %s is damaged (%s): it is left out of lists, reconcile and liveness; delete it with `%s`", d.Kind, d.ID, d.Error, DeleteCommand(d)))
	}
	var names []string
	for _, o := range orphans {
		if o.OtherStore {
			names = append(names, o.Name)
		}
	}
	if len(names) > 0 {
		what := fmt.Sprintf("%d container(s) labelled as aima's were not created by this state store (%s)", len(names), strings.Join(names, ", "))
		if h.Info.Created {
			h.Warnings = append(h.Warnings, fmt.Sprintf("the state store %s began empty at this start, but %s: if the store was lost, stop the daemon and restore its backup (`aima store restore`); `aima service prune` keeps them unless --force", h.Info.Path, what))
		} else {
			h.Warnings = append(h.Warnings, what+": they belong to another daemon's data dir or to a store that was lost; `aima service prune` keeps them unless --force")
		}
	}
	if h.Info.BackupError != "" {
		h.Warnings = append(h.Warnings, "the last backup of the state store failed: "+h.Info.BackupError)
	}
	return h, nil
}

// DeleteCommand is the CLI command that deletes a damaged record.
func DeleteCommand(d state.Damaged) string {
	if d.Kind == "model" {
		return "aima model remove " + d.ID
	}
	return "aima service delete " + d.ID
}
