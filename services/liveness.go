package services

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"aima/errs"
	"aima/runtime"
)

// livenessParallel bounds the probes in flight. A goroutine (and a
// connection) per running service at once, every interval, made the
// daemon's memory at rest follow the number of services in bursts: at
// 1,000 services a thousand probes' stacks and buffers every 5 s. With 64,
// a round of 1,000 healthy engines takes a few tens of milliseconds; a
// round where every probe times out (2 s each) takes 1,000/64 × 2 s, and
// the next round starts when it ends.
const livenessParallel = 64

// livenessLoop probes the health endpoint of every running service. A
// failing probe makes the service unhealthy; still failing after the grace
// period makes it failed (a wedged engine: process alive, health failing),
// and the container is stopped so the restart policy can act.
func (m *Manager) livenessLoop(ctx context.Context) {
	t := time.NewTicker(m.opts.LivenessInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		all, err := m.shared(ctx)
		if err != nil {
			continue
		}
		due := make(chan *Service)
		var wg sync.WaitGroup
		for range min(livenessParallel, len(all)) {
			wg.Go(func() {
				for s := range due {
					m.checkContained(ctx, *s)
				}
			})
		}
		for _, s := range all {
			if s.Status == StatusRunning || s.Status == StatusUnhealthy {
				due <- s
			}
		}
		close(due)
		wg.Wait()
	}
}

// checkContained is checkLiveness with a panic contained to the service.
func (m *Manager) checkContained(ctx context.Context, s Service) {
	defer m.Contain("checking liveness", s.ID)
	m.checkLiveness(ctx, s)
}

func (m *Manager) checkLiveness(ctx context.Context, s Service) {
	eng, err := m.catalog.Get(s.EngineType)
	if err != nil {
		return
	}
	url := "http://" + net.JoinHostPort(m.opts.BindHost, strconv.Itoa(s.Port)) + eng.HealthPath
	ok := m.probe(ctx, url)
	if ctx.Err() != nil {
		return
	}
	unlock := m.lock(s.ID)
	defer unlock()
	cur, err := m.col.Get(ctx, s.ID)
	if err != nil || cur.Run != s.Run {
		return
	}
	now := m.now().UTC()
	switch {
	case ok && cur.Status == StatusUnhealthy:
		_, _ = m.transition(ctx, s.ID, StatusRunning, "health check passes again", func(x *Service) { x.UnhealthySince = nil })
	case !ok && cur.Status == StatusRunning:
		_, _ = m.transition(ctx, s.ID, StatusUnhealthy, "health check "+eng.HealthPath+" failing", func(x *Service) { x.UnhealthySince = &now })
	case !ok && cur.Status == StatusUnhealthy && cur.UnhealthySince != nil && now.Sub(*cur.UnhealthySince) >= m.opts.UnhealthyGrace:
		bg := context.WithoutCancel(ctx)
		// Wedged means the process still runs: check before saying so.
		info, err := m.rt.InspectContainer(bg, cur.ContainerID)
		switch {
		case errs.Is(err, errs.NotFound):
			m.containerEndedLocked(bg, cur, cur.ContainerID, "container was removed outside aima", nil)
			return
		case err != nil:
			return // Docker unreachable: cannot tell wedged from dead; the resync decides
		case !info.Running:
			code := info.ExitCode
			m.containerEndedLocked(bg, cur, cur.ContainerID, fmt.Sprintf("container exited with code %d%s", code, ExitDescription(code)), &code)
			return
		}
		f := failure{kind: FailureWedged, reason: fmt.Sprintf("engine unhealthy for %s: %s failing while the process runs (wedged)", m.opts.UnhealthyGrace, eng.HealthPath)}
		lines := m.failureLines(bg, cur.ContainerID)
		f.logTail = keptTail(lines)
		// Stop it first: the die event then finds the service failed already.
		m.failRunning(bg, cur, f)
		_ = m.rt.StopContainer(bg, cur.ContainerID, runtime.StopOptions{Timeout: m.opts.StopTimeout})
	}
}
