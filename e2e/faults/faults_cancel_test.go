package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/client"
	"aima/events"
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

// fltRace says when the second call goes out: after a fixed delay from
// the start request (as the race was first measured), or the moment the
// start enters a phase (from its event stream), so every phase whose
// runtime call Docker carries on with is hit: cleanup (removing the
// previous container), create, start.
type fltRace struct {
	delay time.Duration
	phase string
}

func (r fltRace) String() string {
	if r.phase != "" {
		return "in " + r.phase
	}
	return r.delay.String() + " after"
}

// fltRaces assigns service i of a batch its race.
func fltRaces(first time.Duration, phases ...string) func(i int) fltRace {
	return func(i int) fltRace {
		if i%(len(phases)+1) == 0 {
			return fltRace{delay: first}
		}
		return fltRace{phase: phases[i%(len(phases)+1)-1]}
	}
}

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
// when r says, the call second makes; it returns second's HTTP status and
// body.
func (d *fltDaemon) raceStart(id string, r fltRace, second string) (int, string) {
	before, ok := d.status(id) // the run before this start
	if !ok {
		return 0, "no status of " + id
	}
	go func() { _, _, _ = d.Post("/api/service/start", map[string]any{"service_id": id}) }()
	if r.phase == "" {
		time.Sleep(r.delay)
	} else if err := d.awaitPhase(id, before.Run+1, r.phase); err != nil {
		return 0, err.Error()
	}
	code, body, err := d.Post("/api/service/"+second, map[string]any{"service_id": id})
	if err != nil {
		return 0, err.Error()
	}
	return code, string(body)
}

// awaitPhase follows the service's events until its start of run enters
// phase (or ends, or 60 s pass).
func (d *fltDaemon) awaitPhase(id string, run int, phase string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := false
	_, err := client.New(d.URL()).Call(ctx, "service_events", map[string]any{"service_id": id, "follow": true},
		&client.Stream{OnEvent: func(ev events.Event) {
			if ev.Run == run && (ev.Phase == phase || (ev.Type == events.TypeStatus && ev.Status != "creating")) {
				seen = true
				cancel()
			}
		}})
	if !seen {
		return fmt.Errorf("the start of %s (run %d) never reached %s: %v", id, run, phase, err)
	}
	return nil
}

// Delete 20 ms after a start, or as it enters cleanup, pull, create or
// start: every delete answers 200, the record is gone, and so is every
// container of the service, also a second later (Docker may finish a
// create the start asked for after the delete). Run on services never
// started and on services that ran once (their start's cleanup removes the
// previous container).
func TestFaultDeleteRacesStart(t *testing.T) {
	t.Parallel() // its own daemon, store and containers: it runs beside the other long cases
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
				race, races := map[string]fltRace{}, fltRaces(20*time.Millisecond, "cleanup", "pull", "create", "start")
				for i, id := range ids {
					race[id] = races(i)
				}
				e.each(t, ids, func(id string) error {
					if code, body := d.raceStart(id, race[id], "delete"); code != 200 {
						s, _ := d.status(id)
						return fmt.Errorf("delete %s the start: %d %s; record now %v", race[id], code, body, s)
					}
					if code, _, _ := d.Get("/api/service/status?service_id=" + id); code != 404 {
						return fmt.Errorf("status after the delete: %d, want 404", code)
					}
					return nil
				})
				time.Sleep(time.Second) // a create Docker finishes late would show by now
				for _, id := range ids {
					if cs := fltContainers(t, id); len(cs) != 0 {
						t.Errorf("service %s (deleted %s its start) left containers: %+v", id, race[id], cs)
					}
				}
			})
		})
	}
}

// Start, stop 5 ms later (or as the start enters cleanup, create or
// start), then `start --wait`: the stop answers 200 and the service is
// stopped, then the new start runs it (its cleanup waits for a removal the
// stopped start left in progress instead of failing). One container, the
// recorded one, running.
func TestFaultStopRacesStart(t *testing.T) {
	t.Parallel() // its own daemon, store and containers: it runs beside the other long cases
	e := fltSetup(t)
	d := e.d
	fltEach(t, func(t *testing.T, rep int) {
		ids := e.ranOnce(t, fltRaceBatch)
		race, races := map[string]fltRace{}, fltRaces(5*time.Millisecond, "cleanup", "create", "start")
		for i, id := range ids {
			race[id] = races(i)
		}
		e.each(t, ids, func(id string) error {
			if code, body := d.raceStart(id, race[id], "stop"); code != 200 {
				return fmt.Errorf("stop %s the start: %d %s", race[id], code, body)
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
