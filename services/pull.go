package services

import (
	"aima/internal/units"
	"context"
	"fmt"
	"sync"
	"time"

	"aima/events"
	"aima/runtime"
)

// pullThrottle is the minimum gap between byte updates of one layer; status
// changes (Downloading → Pull complete) always go out.
const pullThrottle = 100 * time.Millisecond

// ensureImage pulls the image when it is absent, publishing byte progress
// per layer.
func (m *Manager) ensureImage(ctx context.Context, id string, run int, ref string) error {
	ok, err := m.rt.ImageExists(ctx, ref)
	if err != nil {
		return err
	}
	if ok {
		m.message(id, run, PhasePull, "image "+ref+" is present")
		return nil
	}
	m.message(id, run, PhasePull, "pulling image "+ref)
	var mu sync.Mutex
	last := map[string]time.Time{}
	lastStatus := map[string]string{}
	err = m.rt.PullImage(ctx, ref, runtime.PullOptions{Progress: func(p runtime.PullProgress) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		// A layer's last byte update (current == total) always goes out, so
		// the bytes shown end at 100% however fast the layer came.
		done := p.Total > 0 && p.Current >= p.Total
		if p.Status == lastStatus[p.Layer] && now.Sub(last[p.Layer]) < pullThrottle && !done {
			return
		}
		last[p.Layer], lastStatus[p.Layer] = now, p.Status
		msg := p.Status
		if p.Layer != "" {
			msg = p.Layer + ": " + p.Status
		}
		if p.Total > 0 {
			msg += fmt.Sprintf(" %s/%s", units.Bytes(p.Current), units.Bytes(p.Total))
		}
		m.bus.Publish(events.Event{ServiceID: id, Run: run, Type: events.TypeProgress, Status: string(StatusCreating),
			Phase: string(PhasePull), Layer: p.Layer, Current: p.Current, Total: p.Total, Message: msg})
	}})
	if err != nil {
		return err
	}
	m.message(id, run, PhasePull, "pulled image "+ref)
	return nil
}
