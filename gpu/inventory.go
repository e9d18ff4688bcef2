package gpu

import (
	"context"
	"sync"
	"time"
)

// Inventory keeps the last snapshot read from a Source. It is read at
// daemon start and refreshed whenever a placement decision needs current
// memory figures; concurrent refreshes share one read.
type Inventory struct {
	src Source

	mu   sync.Mutex // held during a read, so concurrent callers share it
	last Snapshot
	err  error
	read bool
	// lastRead is when the last read ended (monotonic clock).
	lastRead time.Time
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
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.read && !i.readAt().Before(asked) {
		return i.last, i.err
	}
	s, err := i.src.Read(ctx)
	if err != nil && ctx.Err() != nil {
		return Snapshot{}, err // our caller gave up; keep the last good read
	}
	i.last, i.err, i.read = s, err, true
	if err == nil && i.last.ReadAt.IsZero() {
		i.last.ReadAt = time.Now().UTC()
	}
	i.lastRead = time.Now()
	return i.last, i.err
}

// Last returns the most recent read, reading once if there was none.
func (i *Inventory) Last(ctx context.Context) (Snapshot, error) {
	i.mu.Lock()
	read := i.read
	s, err := i.last, i.err
	i.mu.Unlock()
	if read {
		return s, err
	}
	return i.Refresh(ctx)
}

func (i *Inventory) readAt() time.Time { return i.lastRead }

// Static is a Source that always answers the same snapshot (unit tests,
// and hosts where the inventory is disabled).
type Static Snapshot

// Read implements Source.
func (s Static) Read(context.Context) (Snapshot, error) {
	snap := Snapshot(s)
	snap.Devices = append([]Device(nil), snap.Devices...)
	return snap, nil
}
