package services

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"aima/events"
	"aima/state"
)

// journalKeep is how many durable events per service are kept.
const journalKeep = 1000

// Journal persists each service's durable events in the state store, under
// events/<service>/<seq>, so history survives daemon restarts.
type Journal struct {
	store state.Store
}

// NewJournal returns a journal over the store.
func NewJournal(s state.Store) *Journal { return &Journal{store: s} }

func journalPrefix(id string) string { return "events/" + id + "/" }

// Load implements events.Journal.
func (j *Journal) Load(id string) ([]events.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := j.store.List(ctx, journalPrefix(id))
	if err != nil {
		return nil, err
	}
	out := make([]events.Event, 0, len(entries))
	for _, e := range entries {
		var ev events.Event
		if err := json.Unmarshal(e.Value, &ev); err == nil {
			out = append(out, ev)
		}
	}
	return out, nil
}

// Append implements events.Journal; it prunes old entries now and then.
func (j *Journal) Append(ev events.Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if _, err := j.store.Put(ctx, fmt.Sprintf("%s%020d", journalPrefix(ev.ServiceID), ev.Seq), raw, state.AnyRev); err != nil {
		return err
	}
	if ev.Seq%200 == 0 {
		j.prune(ctx, ev.ServiceID)
	}
	return nil
}

func (j *Journal) prune(ctx context.Context, id string) {
	entries, err := j.store.List(ctx, journalPrefix(id))
	if err != nil || len(entries) <= journalKeep {
		return
	}
	for _, e := range entries[:len(entries)-journalKeep] {
		_ = j.store.Delete(ctx, e.Key, state.AnyRev)
	}
}

// Forget deletes a service's history (on service delete).
func (j *Journal) Forget(ctx context.Context, id string) {
	entries, err := j.store.List(ctx, journalPrefix(id))
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Key, journalPrefix(id)) {
			_ = j.store.Delete(ctx, e.Key, state.AnyRev)
		}
	}
}
