package services

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"aima/errs"
	"aima/events"
)

// Sleep puts a running service to sleep: the engine frees its GPU memory
// (vLLM's sleep mode, level 1: weights offloaded to CPU memory, KV cache
// dropped) and keeps running, so a wake takes seconds instead of a cold
// start. Requests in flight finish first; new ones wait and wake it again.
// Only services created with sleep mode (on demand, an idle timeout or a
// swap group, on an engine that can sleep) can sleep.
func (m *Manager) Sleep(ctx context.Context, ref string) (Service, error) {
	s, err := m.Get(ctx, ref)
	if err != nil {
		return Service{}, err
	}
	if s.Status == StatusSleeping {
		return s, nil
	}
	if !s.SleepMode {
		return s, errs.New(errs.Conflict, "service %s runs without sleep mode (create it with on_demand, idle_timeout or swap_group on an engine that can sleep); stop it instead", s.ID)
	}
	resume, left := m.serving.Quiesce(ctx, s.ID, QuiesceOptions{})
	defer resume()
	if left > 0 {
		return s, errs.New(errs.Unavailable, "service %s still has %d requests in flight; try again later", s.ID, left)
	}
	return m.sleepDrained(ctx, s.ID, "sleep requested")
}

// sleepDrained does the sleep once nothing is in flight.
func (m *Manager) sleepDrained(ctx context.Context, id, reason string) (Service, error) {
	unlock, err := m.lockFor(ctx, id)
	if err != nil {
		return Service{}, err
	}
	defer unlock()
	s, err := m.col.Get(ctx, id)
	if err != nil {
		return s, err
	}
	if s.Status == StatusSleeping {
		return s, nil
	}
	if s.Status != StatusRunning && s.Status != StatusUnhealthy {
		return s, errs.New(errs.Conflict, "service %s is %s; only a running service can sleep", s.ID, s.Status)
	}
	eng, err := m.catalog.Get(s.EngineType)
	if err != nil {
		return s, err
	}
	if eng.Sleep == nil {
		return s, errs.New(errs.Conflict, "engine %s has no sleep mode", s.EngineType)
	}
	m.bus.Publish(events.Event{ServiceID: s.ID, Run: s.Run, Type: events.TypeMessage, Status: string(s.Status), Message: "putting the engine to sleep: " + reason})
	began := m.now()
	if err := m.engineCall(ctx, s, eng.Sleep.SleepPath, eng.Sleep.Body); err != nil {
		return s, errs.Wrap(errs.Unavailable, err, "put service %s to sleep", s.ID)
	}
	took := m.now().Sub(began)
	return m.transition(ctx, s.ID, StatusSleeping, fmt.Sprintf("%s (fell asleep in %.1fs)", reason, took.Seconds()), nil)
}

// Wake wakes a sleeping service (after swapping out the active member of
// its swap group). Waking a service that is not sleeping does nothing.
func (m *Manager) Wake(ctx context.Context, ref string) (Service, error) {
	s, err := m.Get(ctx, ref)
	if err != nil {
		return Service{}, err
	}
	if s.Status != StatusSleeping {
		return s, nil
	}
	if s.SwapGroup != "" {
		release, err := m.serving.SwapIn(ctx, s)
		if err != nil {
			return s, err
		}
		defer release()
	}
	unlock, err := m.lockFor(ctx, s.ID)
	if err != nil {
		return s, err
	}
	defer unlock()
	if s, err = m.col.Get(ctx, s.ID); err != nil || s.Status != StatusSleeping {
		return s, err
	}
	eng, err := m.catalog.Get(s.EngineType)
	if err != nil {
		return s, err
	}
	if eng.Sleep == nil {
		return s, errs.New(errs.Conflict, "engine %s has no sleep mode", s.EngineType)
	}
	if s.GPULease != nil {
		// Its GPUs were left to others while it slept: take them back.
		if _, err := m.AcquireGPUs(ctx, s.ID, false); err != nil {
			return s, err
		}
	}
	m.bus.Publish(events.Event{ServiceID: s.ID, Run: s.Run, Type: events.TypeMessage, Status: string(s.Status), Message: "waking the engine up"})
	began := m.now()
	if err := m.engineCall(ctx, s, eng.Sleep.WakePath, eng.Sleep.Body); err != nil {
		return s, errs.Wrap(errs.Unavailable, err, "wake service %s", s.ID)
	}
	took := m.now().Sub(began)
	return m.transition(ctx, s.ID, StatusRunning, fmt.Sprintf("woke up in %.1fs", took.Seconds()), nil)
}

// Release frees a service's GPUs the cheapest way back: sleep where it
// can, stop otherwise, with reason on the record. The caller has quiesced
// its requests (an idle release, a swap, an eviction).
func (m *Manager) Release(ctx context.Context, s Service, reason string) error {
	if s.SleepMode && (s.Status == StatusRunning || s.Status == StatusUnhealthy) {
		if _, err := m.sleepDrained(ctx, s.ID, reason); err == nil {
			return nil
		} else {
			m.log.Warn("sleep failed; stopping instead", "service", s.ID, "err", err)
		}
	}
	_, err := m.StopFor(ctx, s.ID, reason)
	return err
}

// engineCall POSTs to one of the engine's own endpoints (sleep, wake).
// Sleep offloads gigabytes, so it gets minutes, not the probe's seconds.
func (m *Manager) engineCall(ctx context.Context, s Service, path, body string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	url := "http://" + net.JoinHostPort(m.opts.BindHost, strconv.Itoa(s.Port)) + path
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, rd)
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: HTTP %d %s", path, resp.StatusCode, truncate(string(answer), 200))
	}
	return nil
}
