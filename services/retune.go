package services

import (
	"context"
	"fmt"
	"math"
	"time"

	"aima/errs"
	"aima/events"
	"aima/gpu"
	"aima/settings"
)

// Retuning a start that ran out of memory (on_oom: retune): when the
// engine names the cause with its own figures, the start is tried again,
// at most maxRetunes times, with the argument computed by gpu.PlanOOM. Each
// attempt is a new run of the same start (the status stays creating), the
// adjustment is kept on the record (Retunes) and said in the events, and
// the tuned args replace the service's, so `service status` shows what
// runs. Anything else fails as before.

// OnOOM policies as a service records them (settings.OnOOM, whose
// ParseOnOOM validates a service's and the config's on_oom).
const (
	OnOOMFail   = string(settings.OnOOMFail)   // a memory failure fails the start (default)
	OnOOMRetune = string(settings.OnOOMRetune) // retried with adjusted args, at most maxRetunes times
)

// maxRetunes bounds the retries of one start.
const maxRetunes = 2

// Retune is one adjustment a retune made, kept on the record.
type Retune struct {
	gpu.Adjustment
	Run int       `json:"run" jsonschema:"the run that failed and was retuned"`
	At  time.Time `json:"at"`
}

// retune decides whether a failed attempt of a start is tried again and,
// if so, records the adjustment and the next run on the record and returns
// it. The start's status stays creating throughout.
func (m *Manager) retune(ctx context.Context, s Service, f *failure, firstRun int) (Service, bool) {
	if s.OnOOM != OnOOMRetune || f == nil || f.engineLine == "" || f.rule == nil || !f.rule.Memory || s.Run-firstRun >= maxRetunes {
		return s, false
	}
	eng, err := m.catalog.Get(s.EngineType)
	if err != nil {
		return s, false
	}
	oc := gpu.OOMContext{Engine: eng.Type, Args: append(append([]string(nil), eng.Args...), s.Args...), FreeShare: -1, FreeMiB: -1}
	if snap, err := m.opts.GPUs.Refresh(ctx); err == nil && s.GPULease != nil {
		for _, ld := range s.GPULease.Devices {
			if d, ok := snap.Find(ld.UUID); ok && d.MemoryKnown() && *d.MemoryTotalBytes > 0 {
				share := float64(*d.MemoryFreeBytes) / float64(*d.MemoryTotalBytes)
				mib := float64(*d.MemoryFreeBytes) / (1 << 20)
				if oc.FreeShare < 0 || share < oc.FreeShare {
					oc.FreeShare = share
				}
				if oc.FreeMiB < 0 || mib < oc.FreeMiB {
					oc.FreeMiB = math.Floor(mib)
				}
			}
		}
	}
	plan := gpu.PlanOOM(oc, append(append([]string(nil), f.logTail...), f.engineLine))
	if plan.Adjust == nil {
		f.reason += "; not retuned: " + plan.Reason
		return s, false
	}
	a := *plan.Adjust
	now := m.now().UTC()
	next, err := m.col.Update(ctx, s.ID, func(x *Service) error {
		if x.Status != StatusCreating || x.Run != s.Run {
			return errs.New(errs.Conflict, "service %s is no longer starting", s.ID)
		}
		x.Retunes = append(x.Retunes, Retune{Adjustment: a, Run: x.Run, At: now})
		x.Args = gpu.WithFlag(x.Args, a.Flag, a.To)
		x.Run++
		x.Phase = PhaseCleanup
		x.UpdatedAt = now
		return nil
	})
	if err != nil {
		return s, false
	}
	msg := fmt.Sprintf("out of memory (%s): retrying with %s %s instead of %s, because %s (retune %d of at most %d)",
		a.Cause, a.Flag, a.To, a.From, a.Why, next.Run-firstRun, maxRetunes)
	m.bus.Publish(events.Event{ServiceID: s.ID, Run: s.Run, Type: events.TypeMessage, Status: string(StatusCreating), Message: "run failed: " + f.reason})
	m.bus.Publish(events.Event{ServiceID: s.ID, Run: next.Run, Type: events.TypeMessage, Status: string(StatusCreating), Message: msg})
	return next, true
}
