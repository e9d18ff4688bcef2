package serving

import (
	"time"

	"aima/services"
)

// RequestFigures is what one finished request adds to its service's figures.
type RequestFigures struct {
	TokensIn, TokensOut int
	TTFT                time.Duration // 0: no token was produced
	Failed              bool
}

// entry is the serving state of one service: its figures, and what
// holds its requests off.
type entry struct {
	services.Traffic
	ttftSum time.Duration
	ttftN   int64
	// holds counts what stops admitting new requests (they wait): a
	// release or a swap waiting for the requests in flight, an eviction,
	// a GPU drain. Each hold ends with its own release, so one ending
	// never reopens a service another still holds.
	holds int
	// moving counts the GPU drains moving it to other GPUs: waiters wait
	// for that instead of starting it (quiesce.go).
	moving int
	// idle release: the service is released at lastActivity+idle while
	// nothing is in flight or waiting (idle == 0: never).
	idle         time.Duration
	lastActivity time.Time
}

// held reports whether new requests are held off.
func (e *entry) held() bool { return e.holds > 0 }

// entryLocked returns the service's entry, creating it.
func (sc *Scheduler) entryLocked(id string) *entry {
	e, ok := sc.entries[id]
	if !ok {
		e = &entry{}
		sc.entries[id] = e
	}
	return e
}

// notifyLocked wakes everyone waiting for a change.
func (sc *Scheduler) notifyLocked() {
	close(sc.changed)
	sc.changed = make(chan struct{})
	select {
	case sc.kick <- struct{}{}:
	default:
	}
}

// notify is notifyLocked for a caller without the lock.
func (sc *Scheduler) notify() {
	sc.mu.Lock()
	sc.notifyLocked()
	sc.mu.Unlock()
}

// waitCh returns the channel the next change closes. Take it before
// reading the state it guards, so no change falls between.
func (sc *Scheduler) waitCh() <-chan struct{} {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.changed
}

// Figures returns a copy of the service's figures, or nil before its
// first request (services.Serving: Get and List show them; the router
// picks the least busy of a model's services by them).
func (sc *Scheduler) Figures(id string) *services.Traffic {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e, ok := sc.entries[id]
	if !ok {
		return nil
	}
	t := e.Traffic
	return &t
}

// waiting returns how many requests wait for the service.
func (sc *Scheduler) waiting(id string) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if e, ok := sc.entries[id]; ok {
		return e.Waiting
	}
	return 0
}

// forget drops a deleted service's state and its ready record.
func (sc *Scheduler) forget(id string) {
	sc.readyMu.Lock()
	delete(sc.ready, id)
	sc.readyMu.Unlock()
	sc.mu.Lock()
	delete(sc.entries, id)
	sc.notifyLocked()
	sc.mu.Unlock()
}

// arm (re)starts the idle clock of a service that became ready.
func (sc *Scheduler) arm(id string, idle time.Duration, now time.Time) {
	sc.mu.Lock()
	e := sc.entryLocked(id)
	e.idle, e.lastActivity = idle, now
	sc.notifyLocked()
	sc.mu.Unlock()
}

// finish records the end of an admitted request.
func (sc *Scheduler) finish(id string, r RequestFigures, now time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e := sc.entryLocked(id)
	e.InFlight--
	e.TokensIn += int64(r.TokensIn)
	e.TokensOut += int64(r.TokensOut)
	if r.Failed {
		e.Failed++
	}
	if r.TTFT > 0 {
		e.ttftSum += r.TTFT
		e.ttftN++
		e.LastTTFTMs = float64(r.TTFT.Microseconds()) / 1000
		e.AvgTTFTMs = float64((e.ttftSum / time.Duration(e.ttftN)).Microseconds()) / 1000
	}
	e.lastActivity = now
	t := now
	e.LastRequestAt = &t
	sc.notifyLocked()
}

// idleDue returns the services whose idle time has run out at now, and
// when the next one will (zero: none armed).
func (sc *Scheduler) idleDue(now time.Time) (due []string, next time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for id, e := range sc.entries {
		if e.idle <= 0 || !e.idleNow() {
			continue
		}
		at := e.lastActivity.Add(e.idle)
		if !at.After(now) {
			due = append(due, id)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return due, next
}
