package services

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"aima/gpu"
)

// Making room by eviction: a start or a wake whose placement is refused may
// free GPUs by releasing idle services created with evictable (sleep where
// the engine can, else stop), least recently used first. Only running
// services with nothing in flight, waiting or held are taken (the serving
// layer's ClaimIdle decides atomically), and only as many as the placement
// needs: the choice is simulated on the inventory and the leases with
// gpu.Released and gpu.Place before anything is released. Each side's
// events say what happened: the starter names who it evicted and why, the
// evicted names who took its GPU. On a cluster a sleeping Pod keeps its
// GPUs (gpu.Lease.SleepFrees), so a victim is always stopped, and an idle
// evictable service that sleeps there is a candidate too. See
// docs/decisions.md ("Eviction").

// Eviction is the last time a service was evicted, kept on its record.
type Eviction struct {
	By   string    `json:"by" jsonschema:"the service that took its GPUs"`
	GPUs string    `json:"gpus" jsonschema:"indexes of the GPUs it gave up"`
	Node string    `json:"node,omitempty" jsonschema:"on a cluster: the node of those GPUs"`
	At   time.Time `json:"at" jsonschema:"when it was evicted"`
}

// evictCandidate is a service that could be evicted.
type evictCandidate struct {
	s        Service
	lastUsed int64 // UnixNano of its last request's end, or when it became ready
}

// placeEvicting places the service like place, and on a refusal that
// evicting idle services would cure, evicts them and places again. tell
// publishes a line in the placed service's events.
func (m *Manager) placeEvicting(ctx context.Context, s Service, snap gpu.Snapshot, req gpu.Request, tell func(string)) (gpu.Decision, error) {
	d, err := m.place(ctx, snap, req, s.ID)
	var r *gpu.Refusal
	if err == nil || req.Force || !errors.As(err, &r) {
		return d, err
	}
	m.evictMu.Lock()
	defer m.evictMu.Unlock()
	// Another eviction may have made room meanwhile.
	if d, err = m.place(ctx, snap, req, s.ID); err == nil || !errors.As(err, &r) {
		return d, err
	}
	victims, busy := m.chooseVictims(ctx, s, snap, req)
	if len(victims) == 0 {
		if len(busy) > 0 {
			tell(fmt.Sprintf("no room, and no idle service to evict: evictable %s busy with requests", strings.Join(busy, ", ")))
		}
		return d, err
	}
	evicted := 0
	for _, v := range victims {
		if m.evict(ctx, v, s, tell) {
			evicted++
		}
	}
	if evicted == 0 {
		return d, err
	}
	if fresh, ferr := m.opts.GPUs.Refresh(ctx); ferr == nil {
		snap = fresh
	}
	return m.place(ctx, snap, req, s.ID)
}

// mayEvictFor reports whether some other service could be evicted now, so
// a refusal on the inventory as last read is not yet final.
func (m *Manager) mayEvictFor(ctx context.Context, id string) bool {
	return len(m.evictCandidates(ctx, id)) > 0
}

// evictCandidates are the idle evictable running services other than id,
// least recently used first.
func (m *Manager) evictCandidates(ctx context.Context, id string) []evictCandidate {
	all, err := m.shared(ctx)
	if err != nil {
		return nil
	}
	var out []evictCandidate
	for _, p := range all {
		if p.ID == id || !p.Evictable || p.GPULease == nil || !evictableNow(*p) {
			continue
		}
		used, idle := m.serving.Idle(p.ID)
		if !idle {
			continue
		}
		c := evictCandidate{s: *p}
		if !used.IsZero() {
			c.lastUsed = used.UnixNano()
		}
		if c.lastUsed == 0 && p.ReadyAt != nil {
			c.lastUsed = p.ReadyAt.UnixNano()
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].lastUsed != out[j].lastUsed {
			return out[i].lastUsed < out[j].lastUsed
		}
		return out[i].s.ID < out[j].s.ID
	})
	return out
}

// evictableNow reports a status in which the service's eviction frees
// GPUs: running, or asleep on a cluster (where its Pod keeps them).
func evictableNow(s Service) bool {
	return s.Status == StatusRunning || (s.Status == StatusSleeping && s.GPULease != nil && !s.GPULease.SleepFrees())
}

// chooseVictims picks the fewest least recently used candidates whose
// release lets req be placed, simulated with gpu.Place; none when even all
// of them would not do. busy names the evictable services that hold GPUs
// but have requests (they are never taken).
func (m *Manager) chooseVictims(ctx context.Context, s Service, snap gpu.Snapshot, req gpu.Request) (victims []evictCandidate, busy []string) {
	all, err := m.shared(ctx)
	if err == nil {
		for _, p := range all {
			if p.ID == s.ID || !p.Evictable || p.GPULease == nil || !p.Status.HoldsGPUs() {
				continue
			}
			if _, idle := m.serving.Idle(p.ID); !idle {
				busy = append(busy, p.ID)
			}
		}
	}
	cands := m.evictCandidates(ctx, s.ID)
	if len(cands) == 0 {
		return nil, busy
	}
	held, err := m.heldLeases(ctx)
	if err != nil {
		return nil, busy
	}
	if req.Cordoned, err = m.Cordons(ctx); err != nil {
		return nil, busy
	}
	fits := func(set []evictCandidate) bool {
		gone := make(map[string]bool, len(set))
		for _, c := range set {
			gone[c.s.ID] = true
		}
		snapAfter, heldAfter := gpu.Released(snap, held, gone)
		_, err := gpu.Place(snapAfter, heldAfter, req, m.opts.GPUPolicy)
		return err == nil
	}
	if !fits(cands) {
		return nil, busy
	}
	var chosen []evictCandidate
	for _, c := range cands {
		chosen = append(chosen, c)
		if fits(chosen) {
			break
		}
	}
	// Never more than needed: give back the most recently used ones the
	// placement does not need after all.
	for i := len(chosen) - 1; i >= 0 && len(chosen) > 1; i-- {
		without := append(append([]evictCandidate(nil), chosen[:i]...), chosen[i+1:]...)
		if fits(without) {
			chosen = without
		}
	}
	return chosen, busy
}

// evict releases one victim for s if it is still idle, and says so on
// both sides. It reports whether the victim was released.
func (m *Manager) evict(ctx context.Context, v evictCandidate, s Service, tell func(string)) bool {
	undo, ok := m.serving.ClaimIdle(v.s.ID)
	if !ok {
		return false // a request arrived meanwhile: a busy service is never evicted
	}
	defer undo()
	cur, err := m.col.Get(ctx, v.s.ID)
	if err != nil || cur.GPULease == nil || !evictableNow(cur) {
		return false
	}
	idle := "never used since the daemon started"
	if v.lastUsed > 0 {
		idle = "idle for " + m.now().Sub(time.Unix(0, v.lastUsed)).Round(time.Second).String()
	}
	gpus := cur.GPULease.Text()
	how := "stopped"
	release := m.Release
	if !cur.GPULease.SleepFrees() { // on a cluster a sleeping Pod keeps its GPUs: stop it
		release = func(ctx context.Context, s Service, reason string) error {
			_, err := m.StopFor(ctx, s.ID, reason)
			return err
		}
	} else if cur.SleepMode {
		how = "put to sleep"
	}
	reason := fmt.Sprintf("evicted: service %s (%s) needed %s and this was the least recently used idle evictable service (%s)", s.ID, s.Name, gpus, idle)
	if err := release(ctx, cur, reason); err != nil {
		m.log.Warn("evict", "service", v.s.ID, "for", s.ID, "err", err)
		return false
	}
	at := m.now().UTC()
	after, err := m.col.Update(ctx, v.s.ID, func(x *Service) error {
		x.LastEviction = &Eviction{By: s.ID, GPUs: cur.GPULease.Indexes(), Node: cur.GPULease.Node, At: at}
		return nil
	})
	if err == nil && after.Status == StatusStopped {
		how = "stopped"
	}
	tell(fmt.Sprintf("made room on %s: %s service %s (%s), the least recently used idle evictable service (%s)", gpus, how, cur.ID, cur.Name, idle))
	return true
}
