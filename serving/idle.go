package serving

import (
	"context"
	"time"

	"aima/services"
)

// idleLoop releases services whose idle timeout ran out: nothing in
// flight (an open stream counts) and nothing waiting, for that long. It
// sleeps until the next deadline; every request end or status change
// re-arms it. It ends with ctx (Close).
func (sc *Scheduler) idleLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		due, next := sc.idleDue(sc.now())
		for _, id := range due {
			sc.releaseIdleContained(ctx, id)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(sc.now()), time.Millisecond)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-sc.kick:
		}
	}
}

// releaseIdleContained is releaseIdle with a panic contained to the
// service (the lifecycle fails it with the panic), so the idle loop goes
// on.
func (sc *Scheduler) releaseIdleContained(ctx context.Context, id string) {
	defer sc.m.Contain("releasing an idle service", id)
	sc.releaseIdle(ctx, id)
}

// releaseIdle releases one idle service, if it still is idle.
func (sc *Scheduler) releaseIdle(ctx context.Context, id string) {
	sc.mu.Lock()
	e := sc.entryLocked(id)
	idle, last := e.idle, e.lastActivity
	if !e.idleNow() || idle <= 0 || sc.now().Before(last.Add(idle)) {
		sc.mu.Unlock()
		return
	}
	e.idle = 0 // disarmed; the next ready transition arms it again
	e.holds++
	sc.mu.Unlock()
	defer sc.releaser(e, false)()
	s, err := sc.m.Get(ctx, id)
	if err != nil || (s.Status != services.StatusRunning && s.Status != services.StatusUnhealthy) {
		return
	}
	if err := sc.m.Release(ctx, s, "idle for "+idle.String()); err != nil {
		sc.log.Warn("idle release", "service", id, "err", err)
	}
}
