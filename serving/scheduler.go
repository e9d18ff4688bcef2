// Package serving is aima's serving layer: when a service runs for the
// inference requests that ask for it. It admits each request (starting,
// waking or swapping its service in first, one start or wake shared by
// every waiter), counts it in flight and keeps each service's traffic
// figures, releases services whose idle timeout ran out, keeps the members
// of a swap group from running at once, and holds requests off while the
// lifecycle releases or moves a service. It sits beside the lifecycle
// (package services), in the manner of ollama's Scheduler beside its
// runners and llama-swap's ProcessGroup beside its Process: it follows
// the lifecycle's status changes through its transition hook and calls
// its primitives (Get, Start, Wake, Release, StopFor); the lifecycle asks
// it the few request facts it needs through services.Serving and never
// imports it. A request goes gateway → inference (routing) → serving →
// lifecycle, and ends in serving (Admission.Done).
package serving

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"aima/internal/contained"
	"aima/internal/keylock"
	"aima/services"
)

// Options are the serving layer's settings.
type Options struct {
	Logger *slog.Logger
}

// Scheduler is the serving layer of one service manager. Its idle loop
// runs from New until Close.
type Scheduler struct {
	m   *services.Manager
	log *slog.Logger
	now func() time.Time

	ctx    context.Context // New until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// groups serialise the swaps of each swap group (swap.go).
	groups *keylock.Locks

	// mu guards the per-service serving state (traffic.go) and changed,
	// the broadcast channel every change (a status transition, a request
	// admitted or ended, a hold released) closes, so waiters look again.
	mu      sync.Mutex
	entries map[string]*entry
	changed chan struct{}
	kick    chan struct{} // wakes the idle loop after a change of deadlines

	readyMu sync.RWMutex
	ready   map[string]services.Service // running services, for the admission fast path
}

// New builds the serving layer of m and attaches it: from here on m tells
// it every status change (services.Manager.OnTransition) and asks it the
// request facts its operations need (services.Manager.Attach). Call it
// once per manager, before the manager serves anything; Close ends its
// idle loop.
func New(m *services.Manager, opts Options) *Scheduler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc := &Scheduler{
		m: m, log: opts.Logger, now: time.Now, ctx: ctx, cancel: cancel,
		groups:  keylock.New(),
		entries: map[string]*entry{}, changed: make(chan struct{}), kick: make(chan struct{}, 1),
		ready: map[string]services.Service{},
	}
	m.Attach(sc)
	m.OnTransition(sc.transitioned)
	sc.wg.Add(1)
	go func() {
		defer sc.wg.Done()
		contained.KeepRunning(sc.ctx, sc.log, "the idle loop", func(bool) { sc.idleLoop(sc.ctx) })
	}()
	return sc
}

// Close ends the idle loop (and an idle release under way) and waits for
// it.
func (sc *Scheduler) Close() {
	sc.cancel()
	sc.wg.Wait()
}

// ArmRunning starts the idle clock of every service that runs when the
// daemon starts (after the lifecycle's reconcile), as if it had just
// become ready.
func (sc *Scheduler) ArmRunning(ctx context.Context) {
	all, err := sc.m.ListShared(ctx)
	if err != nil {
		return
	}
	for _, p := range all {
		if p.Status == services.StatusRunning {
			sc.noteStatus(*p)
		}
	}
}

// transitioned is the lifecycle's transition hook: it keeps the ready
// cache and the idle clocks true and wakes the waiters. It never blocks
// and never calls back into the lifecycle (the caller may hold the
// service's lock).
func (sc *Scheduler) transitioned(t services.Transition) {
	if t.Deleted {
		sc.forget(t.Service.ID)
		return
	}
	sc.noteStatus(t.Service)
}

// noteStatus keeps the ready cache and the idle clock true after a status
// change, and wakes waiters.
func (sc *Scheduler) noteStatus(svc services.Service) {
	sc.readyMu.Lock()
	if svc.Status == services.StatusRunning {
		sc.ready[svc.ID] = svc
	} else {
		delete(sc.ready, svc.ID)
	}
	sc.readyMu.Unlock()
	if svc.Status == services.StatusRunning && svc.IdleTimeout != "" {
		if d, err := time.ParseDuration(svc.IdleTimeout); err == nil {
			sc.arm(svc.ID, d, sc.now())
			return
		}
	}
	sc.notify()
}

// readyNow reports a cached ready record of the service, so the hot path
// of a request to a running service costs no store read.
func (sc *Scheduler) readyNow(id string) (services.Service, bool) {
	sc.readyMu.RLock()
	defer sc.readyMu.RUnlock()
	svc, ok := sc.ready[id]
	return svc, ok
}

// remember caches a ready record for readyNow; the transition hook keeps
// it true.
func (sc *Scheduler) remember(svc services.Service) {
	sc.readyMu.Lock()
	defer sc.readyMu.Unlock()
	sc.ready[svc.ID] = svc
}
