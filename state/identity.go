package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"aima/errs"
)

// identityKey holds the store's identity record.
const identityKey = "meta/identity"

type identity struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

// StoreID returns the store's identity, a random id made on first use and
// kept in the store (so a restored backup keeps it). aima labels the
// containers it creates with it, which tells them apart from those of
// another store: another daemon's data dir, or a store that was lost and
// began again empty.
func StoreID(ctx context.Context, s Store) (string, error) {
	for attempt := 0; attempt < 3; attempt++ {
		e, ok, err := s.Get(ctx, identityKey)
		if err != nil {
			return "", err
		}
		if ok {
			var id identity
			if err := json.Unmarshal(e.Value, &id); err == nil && id.ID != "" {
				return id.ID, nil
			}
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		raw, _ := json.Marshal(identity{ID: hex.EncodeToString(b[:]), CreatedAt: time.Now().UTC()})
		// Create, or replace an unreadable identity: a concurrent first
		// use wins and is read back on the next round.
		if _, err := s.Put(ctx, identityKey, raw, e.Rev); err != nil && !errors.Is(err, ErrConflict) {
			return "", err
		}
	}
	return "", errs.New(errs.Conflict, "state: store identity keeps changing")
}
