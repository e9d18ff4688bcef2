package gpu

import (
	"context"
	"sync"
	"time"
)

// Inventory keeps the last snapshot read from a Source. It is read at
// daemon start and refreshed whenever a placement decision needs current
// memory figures; concurrent refreshes share one read, and a read in
// flight (even a hung one, until its timeout) never blocks Last.
type Inventory struct {
	src Source

	readMu sync.Mutex // held during a read, so concurrent callers share it

	mu       sync.Mutex // guards the fields below
	last     Snapshot
	err      error
	read     bool
	lastRead time.Time // when the last read ended (monotonic clock)
}

// NewInventory returns an inventory over src (nil: a host without GPUs).
func NewInventory(src Source) *Inventory {
	if src == nil {
		src = Static(Snapshot{Devices: []Device{}, Note: "GPU inventory disabled"})
	}
	return &Inventory{src: src}
}

// Refresh reads the inventory now. A caller that arrives while another
// read is in flight gets that read's result.
func (i *Inventory) Refresh(ctx context.Context) (Snapshot, error) {
	asked := time.Now()
	i.readMu.Lock()
	defer i.readMu.Unlock()
	i.mu.Lock()
	if i.read && !i.lastRead.Before(asked) {
		defer i.mu.Unlock()
		return i.last, i.err
	}
	i.mu.Unlock()
	s, err := i.src.Read(ctx)
	if err != nil && ctx.Err() != nil {
		return Snapshot{}, err // our caller gave up; keep the last read
	}
	if err == nil && s.ReadAt.IsZero() {
		s.ReadAt = time.Now().UTC()
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.last, i.err, i.read, i.lastRead = s, err, true, time.Now()
	return s, err
}

// Last returns the most recent read, reading once if there was none.
func (i *Inventory) Last(ctx context.Context) (Snapshot, error) {
	i.mu.Lock()
	read, s, err := i.read, i.last, i.err
	i.mu.Unlock()
	if read {
		return s, err
	}
	return i.Refresh(ctx)
}

// Static is a Source that always answers the same snapshot (unit tests,
// and hosts where the inventory is disabled).
type Static Snapshot

// Read implements Source.
func (s Static) Read(context.Context) (Snapshot, error) {
	snap := Snapshot(s)
	snap.Devices = append([]Device(nil), snap.Devices...)
	return snap, nil
}
