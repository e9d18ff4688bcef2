package services

import (
	"testing"
	"time"
)

// A service stopping past its stop timeout while an operation holds it is
// stuck (the wedge a locked event log once caused: the stop hung in its
// status change and doctor said nothing); once nothing holds it, it is
// stranded instead; a recent stop is neither.
func TestStuck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.create(serving(), nil)
	h.edit(s.ID, func(x *Service) { x.Status, x.UpdatedAt = StatusStopping, time.Now() })
	unlock := h.m.lock(s.ID) // a stop blocked inside its lock
	if got, err := h.m.Stuck(h.ctx()); err != nil || len(got) != 0 {
		t.Fatalf("a stop under way: stuck %+v, %v", got, err)
	}
	since := time.Now().Add(-h.m.opts.StopTimeout - stuckGrace - time.Second)
	h.edit(s.ID, func(x *Service) { x.UpdatedAt = since })
	got, err := h.m.Stuck(h.ctx())
	if err != nil || len(got) != 1 || got[0].ServiceID != s.ID || got[0].Status != StatusStopping || !got[0].LockHeld || !got[0].Since.Equal(since) {
		t.Fatalf("stuck %+v, %v; want %s stopping with its lock held", got, err, s.ID)
	}
	if st, _ := h.m.Stranded(h.ctx()); len(st) != 0 {
		t.Fatalf("a held service reported stranded: %+v", st)
	}
	unlock()
	if got, _ := h.m.Stuck(h.ctx()); len(got) != 0 {
		t.Fatalf("nothing holds it: stuck %+v", got)
	}
	if st, _ := h.m.Stranded(h.ctx()); len(st) != 1 {
		t.Fatalf("nothing holds it: stranded %+v, want it", st)
	}
}
