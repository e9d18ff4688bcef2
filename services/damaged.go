package services

import (
	"context"
	"time"

	"aima/state"
)

// A service record that cannot be decoded (state.Damaged) is quarantined:
// List, reconcile and the liveness probe leave it out, Get by its ID says
// it is damaged (errs.Conflict), its containers are not orphans (prune
// keeps them), and Delete removes it with its containers and history.

// Damaged lists the service records that cannot be read.
func (m *Manager) Damaged(ctx context.Context) ([]state.Damaged, error) {
	return m.col.Damaged(ctx)
}

// deleteDamaged deletes the damaged record id: its containers (found by
// label, as the record cannot say which), the record and its history.
func (m *Manager) deleteDamaged(ctx context.Context, id string) (Service, error) {
	unlock, err := m.lockFor(ctx, id)
	if err != nil {
		return Service{}, err
	}
	defer unlock()
	m.cancelStart(id)
	if err := m.removeContainers(ctx, id); err != nil {
		return Service{}, err
	}
	if err := m.col.Delete(ctx, id); err != nil {
		return Service{}, err
	}
	m.forget(ctx, id, 0)
	return Service{ID: id, Reason: "damaged record deleted", UpdatedAt: m.now().UTC()}, nil
}

// storeID is the identity of the manager's store (state.StoreID), read once;
// containers are labelled with it. If the store cannot say, containers get
// no store label, which marks them as not provably this store's.
func (m *Manager) storeID() string {
	m.storeIDOnce.Do(func() {
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		defer cancel()
		id, err := state.StoreID(ctx, m.store)
		if err != nil {
			m.log.Warn("state store identity", "err", err)
		}
		m.storeIDVal = id
	})
	return m.storeIDVal
}
