package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Case 11: a delete or a stop racing a start, sent as an impatient client
// sends them: `service start` in the background, then `service delete` (or
// `stop`) a few milliseconds later, on fltRaceBatch services at once. Docker
// carries out a request whose client went away, so a start cut in its
// cleanup, create or start call used to leave Docker working behind aima's
// back: a delete answered 409 "removal … is already in progress" and left the
// record creating with no start running, a Created container outlived its
// deleted record, and a start after a stop failed in cleanup.

// fltRaceBatch is how many services race at once per repetition.
const fltRaceBatch = 10

// fltRaceDelay spreads the second call over the start's early phases:
// 0, 5, 10, ... 45 ms after the start was sent.
func fltRaceDelay(i int) time.Duration { return time.Duration(i%fltRaceBatch) * 5 * time.Millisecond }

// ranOnce creates n services and starts and stops each once (stopped
// while loading), so the next start's cleanup has a container to remove.
func (e *fltEnv) ranOnce(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.create(t, nil)
	}
	e.each(t, ids, func(id string) error {
		if r := e.d.RunCLI("service", "start", id); r.Code != 0 {
			return fmt.Errorf("start: exit %d: %s", r.Code, r.Stderr)
		}
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if s, ok := e.d.status(id); ok && s.ContainerID != "" && s.Run == 1 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no container after 60s")
			}
		}
		if r := e.d.RunCLI("service", "stop", id); r.Code != 0 {
			return fmt.Errorf("stop: exit %d: %s", r.Code, r.Stderr)
		}
		return nil
	})
	return ids
}

// fltStoppedIn is the phase the start of run was in when a stop came, from
// the service's history ("" when the start had ended before).
func fltStoppedIn(evs []fltEvent, run int) string {
	for _, e := range evs {
		if e.Run == run && e.Type == "status" && e.Status == "stopping" {
			return e.Phase
		}
	}
	return ""
}

// each runs f on every service at once and fails the test with what went
// wrong.
func (e *fltEnv) each(t *testing.T, ids []string, f func(id string) error) {
	t.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, len(ids))
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(id); err != nil {
				errc <- fmt.Errorf("service %s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// raceStart sends `service start` without waiting for its answer, then,
// after delay, the call second makes; it returns second's HTTP status and
// body.
func (d *fltDaemon) raceStart(id string, delay time.Duration, second string) (int, string) {
	go func() { _, _, _ = d.Post("/api/service/start", map[string]any{"service_id": id}) }()
	time.Sleep(delay)
	code, body, err := d.Post("/api/service/"+second, map[string]any{"service_id": id})
	if err != nil {
		return 0, err.Error()
	}
	return code, string(body)
}

// Delete 0-45 ms after a start: every delete answers 200, the record is
// gone, and so is every container of the service, also a second later
// (Docker may finish a create the start asked for after the delete). Run
// on services never started (the start is in create or start) and on
// services that ran once (the start's cleanup is removing the previous
// container).
func TestFaultDeleteRacesStart(t *testing.T) {
	e := fltSetup(t)
	d := e.d
	for _, variant := range []string{"never-started", "after-a-run"} {
		t.Run(variant, func(t *testing.T) {
			fltEach(t, func(t *testing.T, rep int) {
				var ids []string
				if variant == "after-a-run" {
					ids = e.ranOnce(t, fltRaceBatch)
				} else {
					for range fltRaceBatch {
						ids = append(ids, e.create(t, nil))
					}
				}
				delay := map[string]time.Duration{}
				for i, id := range ids {
					delay[id] = fltRaceDelay(i)
				}
				e.each(t, ids, func(id string) error {
					if code, body := d.raceStart(id, delay[id], "delete"); code != 200 {
						s, _ := d.status(id)
						return fmt.Errorf("delete %s after the start: %d %s; record now %v", delay[id], code, body, s)
					}
					if code, _, _ := d.Get("/api/service/status?service_id=" + id); code != 404 {
						return fmt.Errorf("status after the delete: %d, want 404", code)
					}
					return nil
				})
				time.Sleep(time.Second) // a create Docker finishes late would show by now
				for _, id := range ids {
					if cs := fltContainers(t, id); len(cs) != 0 {
						t.Errorf("service %s (deleted %s after its start) left containers: %+v", id, delay[id], cs)
					}
				}
			})
		})
	}
}

// Start, stop 5 ms later, then `start --wait`: the stop answers 200 and
// the service is stopped, then the new start runs it (its cleanup waits
// for a removal the stopped start left in progress instead of failing).
// One container, the recorded one, running.
func TestFaultStopRacesStart(t *testing.T) {
	e := fltSetup(t)
	d := e.d
	fltEach(t, func(t *testing.T, rep int) {
		ids := e.ranOnce(t, fltRaceBatch)
		e.each(t, ids, func(id string) error {
			if code, body := d.raceStart(id, 5*time.Millisecond, "stop"); code != 200 {
				return fmt.Errorf("stop 5ms after the start: %d %s", code, body)
			}
			code, body, err := d.Post("/api/service/start", map[string]any{"service_id": id, "wait": true, "timeout_seconds": 120})
			if err != nil || code != 200 {
				return fmt.Errorf("start --wait after the stop: %d %v %s\nevents:\n%s", code, err, body, d.eventsText(id))
			}
			var out struct{ Service fltSvc }
			if err := json.Unmarshal(body, &out); err != nil || out.Service.Status != "running" {
				return fmt.Errorf("start --wait after the stop: %s", strings.TrimSpace(string(body)))
			}
			return nil
		})
		phases := map[string]int{}
		for _, id := range ids {
			s := d.mustStatus(t, id)
			fltAssertOneContainer(t, s)
			phases[fltStoppedIn(d.events(t, id), s.Run-1)]++
			d.MustCLI(t, "service", "stop", id)
		}
		t.Logf("phase of the raced start when the stop came: %v", phases)
	})
}
