package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/errs"
	"aima/events"
	"aima/services"
	"aima/tools"
)

// startPhases is the order every start goes through.
var startPhases = []string{"cleanup", "schedule", "pull", "create", "start", "loading", "health_check"}

// TestLifecycleStartPhases starts a service through the HTTP API and checks
// the live progress stream, then that a late subscriber replays the same
// start from events_from.
func TestLifecycleStartPhases(t *testing.T) {
	p := newInproc(t)
	s := p.createService(t, tools.ServiceCreateInput{Name: "phases"})

	out, live, err := p.startWait(t, s.ID, 120)
	if err != nil {
		t.Fatalf("service_start wait: %v", err)
	}
	if out.Service.Status != services.StatusRunning {
		t.Fatalf("start output status %s, want running (reason %q)", out.Service.Status, out.Service.Reason)
	}

	t.Run("live stream", func(t *testing.T) {
		if got := phasesOf(live); !slices.Equal(got, startPhases) {
			t.Errorf("phases %v, want %v", got, startPhases)
		}
		if len(live) == 0 {
			t.Fatal("no events")
		}
		last := live[len(live)-1]
		if last.Type != events.TypeStatus || last.Status != "running" {
			t.Errorf("last streamed event %+v, want status running", last)
		}
		assertConsecutive(t, "live", live, out.EventsFrom)
		for _, ev := range live {
			if ev.ServiceID != s.ID || ev.Run != 1 {
				t.Errorf("event of another service or run: %+v", ev)
			}
		}
	})

	t.Run("late subscriber", func(t *testing.T) {
		var hist tools.EventsOutput
		p.call(t, "service_events", tools.ServiceEventsInput{ServiceID: s.ID, After: out.EventsFrom}, &hist)
		replay := make([]events.Event, len(hist.Items))
		for i, h := range hist.Items {
			replay[i] = h.Event
		}
		if got := phasesOf(replay); !slices.Equal(got, startPhases) {
			t.Errorf("replayed phases %v, want %v", got, startPhases)
		}
		assertConsecutive(t, "replay", replay, out.EventsFrom)
		// Same events, same order: the replay starts with what the live
		// stream saw (it may hold later events, never fewer or others).
		if len(replay) < len(live) {
			t.Fatalf("replay has %d events, live stream had %d", len(replay), len(live))
		}
		for i, ev := range live {
			r := replay[i]
			if r.Seq != ev.Seq || r.Type != ev.Type || r.Phase != ev.Phase || r.Status != ev.Status || r.Message != ev.Message {
				t.Errorf("event %d: live %+v, replay %+v", i, ev, r)
			}
		}
		if ev, ok := statusEvent(replay, "running"); !ok {
			t.Error("replay lacks the running status event")
		} else {
			for _, h := range hist.Items {
				if h.Type == events.TypePhase && h.Run == 1 && h.DurationMS == nil {
					t.Errorf("phase %s has no duration", h.Phase)
				}
				if h.Seq > ev.Seq && h.Type == events.TypePhase {
					t.Errorf("phase event %+v after the running status", h.Event)
				}
			}
		}
	})
}

// assertConsecutive checks seqs run from after+1 without gap or duplicate.
func assertConsecutive(t *testing.T, what string, evs []events.Event, after uint64) {
	t.Helper()
	want := after + 1
	for _, ev := range evs {
		if ev.Seq != want {
			t.Errorf("%s: seq %d where %d was due (gap or duplicate): %+v", what, ev.Seq, want, ev)
			return
		}
		want++
	}
}

// TestLifecycleEngineFailures runs the simulator's start-up failure modes:
// each start fails fast with the engine's own error as the reason, not at
// the (generous) deadline, and the failed container's log stays readable.
func TestLifecycleEngineFailures(t *testing.T) {
	p := newInproc(t)
	cases := []struct {
		mode  string
		texts []string // any one of them in the reason
		log   string   // in the container's log
	}{
		{"model-missing", []string{"Invalid repository ID"}, "Invalid repository ID or local directory specified"},
		{"oom-load", []string{"OutOfMemoryError", "CUDA out of memory"}, "torch.OutOfMemoryError: CUDA out of memory"},
		{"kv-none", []string{"No available memory for the cache blocks"}, "No available memory for the cache blocks"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			s := p.createService(t, tools.ServiceCreateInput{Name: "fail-" + tc.mode, Env: []string{"SIM_FAIL=" + tc.mode}})
			_, evs, err := p.startWait(t, s.ID, 120)
			if err == nil {
				t.Fatal("service_start wait=true returned no error for a failing start")
			}
			if k := errs.KindOf(err); k == errs.DeadlineExceeded {
				t.Errorf("error kind %s: the start ran into its deadline instead of failing on the exit: %v", k, err)
			}
			st := p.status(t, s.ID)
			if st.Status != services.StatusFailed {
				t.Fatalf("status %s, want failed (reason %q)", st.Status, st.Reason)
			}
			if st.ExitCode == nil || *st.ExitCode != 1 {
				t.Errorf("exit code %v, want 1", st.ExitCode)
			}
			if st.Failure != services.FailureExited {
				t.Errorf("failure %q, want %q (reason %q)", st.Failure, services.FailureExited, st.Reason)
			}
			found := false
			for _, want := range tc.texts {
				found = found || strings.Contains(st.Reason, want)
			}
			if !found {
				t.Errorf("reason %q lacks the engine's error (any of %q)", st.Reason, tc.texts)
			}
			if !strings.Contains(err.Error(), st.Reason) {
				t.Errorf("start error %q does not carry the reason %q", err, st.Reason)
			}
			if ev, ok := statusEvent(evs, "failed"); !ok {
				t.Error("the stream had no failed status event")
			} else if !strings.Contains(ev.Message, st.Reason) {
				t.Errorf("failed event %q lacks the reason", ev.Message)
			}
			logs, text := p.logText(t, s.ID)
			if logs.ContainerID != st.ContainerID || st.ContainerID == "" {
				t.Errorf("logs of container %q, service's container %q", logs.ContainerID, st.ContainerID)
			}
			if !strings.Contains(text, tc.log) {
				t.Errorf("logs of the failed container lack %q:\n%s", tc.log, text)
			}
			if r := runningContainers(t, s.ID); len(r) != 0 {
				t.Errorf("running containers after the failure: %v", r)
			}
		})
	}
}

// TestLifecycleStartTimeout: an engine that hangs during loading fails the
// start at its deadline with deadline_exceeded, and its container is stopped.
// The deadline leaves room for Docker's create and start on a loaded
// machine, so the hang is what it cuts.
func TestLifecycleStartTimeout(t *testing.T) {
	p := newInproc(t)
	s := p.createService(t, tools.ServiceCreateInput{Name: "hang", Env: []string{"SIM_FAIL=hang"}})
	_, _, err := p.startWait(t, s.ID, 8)
	if err == nil {
		t.Fatal("a hanging start returned no error")
	}
	if _, ok := err.(*errs.Error); !ok {
		t.Errorf("client error is %T, want *errs.Error", err)
	}
	if k := errs.KindOf(err); k != errs.DeadlineExceeded {
		t.Errorf("error kind %s, want %s: %v", k, errs.DeadlineExceeded, err)
	}
	st := p.status(t, s.ID)
	if st.Status != services.StatusFailed {
		t.Fatalf("status %s, want failed", st.Status)
	}
	if st.Failure != services.FailureTimeout || st.Phase != services.PhaseLoading {
		t.Errorf("failure %q in phase %q, want %q in %q", st.Failure, st.Phase, services.FailureTimeout, services.PhaseLoading)
	}
	if !strings.HasPrefix(st.Reason, "timed out in phase loading") {
		t.Errorf("reason %q, want it to start with %q", st.Reason, "timed out in phase loading")
	}
	if st.ContainerID == "" {
		t.Error("no container recorded")
	}
	if r := runningContainers(t, s.ID); len(r) != 0 {
		t.Errorf("container still running after the timeout: %v", r)
	}
	if c := containerStates(t, s.ID); len(c) != 1 {
		t.Errorf("want the one (exited) container kept for its logs, got %v", c)
	}
}

// TestLifecycleTwoServicesOneModel runs two services of the same model on
// one engine type side by side: separate containers, separate logs, and
// stopping one leaves the other serving.
func TestLifecycleTwoServicesOneModel(t *testing.T) {
	p := newInproc(t)
	a := p.createService(t, tools.ServiceCreateInput{Name: "alpha", Args: []string{"--max-model-len", "2048"}})
	b := p.createService(t, tools.ServiceCreateInput{Name: "beta", Args: []string{"--max-model-len", "4096"}})
	if a.Port != 0 || b.Port != 0 {
		t.Fatalf("created services hold ports %d and %d before any start", a.Port, b.Port)
	}
	for _, s := range []services.Service{a, b} {
		if _, _, err := p.startWait(t, s.ID, 120); err != nil {
			t.Fatalf("start %s: %v", s.Name, err)
		}
	}
	sa, sb := p.status(t, a.ID), p.status(t, b.ID)
	if sa.Status != services.StatusRunning || sb.Status != services.StatusRunning {
		t.Fatalf("statuses %s, %s; want both running", sa.Status, sb.Status)
	}
	if sa.Port == 0 || sa.Port == sb.Port {
		t.Fatalf("ports at the first start: %d and %d; want two distinct", sa.Port, sb.Port)
	}
	if sa.ContainerID == "" || sa.ContainerID == sb.ContainerID {
		t.Fatalf("container ids %q and %q; want two distinct", sa.ContainerID, sb.ContainerID)
	}

	t.Run("logs are per service", func(t *testing.T) {
		for _, c := range []struct {
			s          services.Service
			own, other string
		}{{sa, "Using max model len 2048", "Using max model len 4096"}, {sb, "Using max model len 4096", "Using max model len 2048"}} {
			out, text := p.logText(t, c.s.ID)
			if out.ContainerID != c.s.ContainerID {
				t.Errorf("%s: logs from container %s, want %s", c.s.Name, out.ContainerID, c.s.ContainerID)
			}
			if !strings.Contains(text, c.own) || strings.Contains(text, c.other) {
				t.Errorf("%s: logs should hold %q and not %q:\n%s", c.s.Name, c.own, c.other, text)
			}
		}
	})

	t.Run("stopping one leaves the other", func(t *testing.T) {
		var stop tools.StopOutput
		p.call(t, "service_stop", tools.ServiceRef{ServiceID: a.ID}, &stop)
		if stop.Service.Status != services.StatusStopped {
			t.Fatalf("stop A: status %s", stop.Service.Status)
		}
		if r := runningContainers(t, a.ID); len(r) != 0 {
			t.Errorf("A still has running containers: %v", r)
		}
		if st := p.status(t, b.ID); st.Status != services.StatusRunning {
			t.Errorf("B is %s after stopping A", st.Status)
		}
		if r := runningContainers(t, b.ID); len(r) != 1 {
			t.Errorf("B's running containers: %v", r)
		}
		if code := httpGetStatus(sb.Endpoint + "/health"); code != 200 {
			t.Errorf("B's /health answered %d after stopping A", code)
		}
		if code := httpGetStatus(sa.Endpoint + "/health"); code == 200 {
			t.Errorf("A's /health still answers 200 after its stop")
		}
	})
}

// TestLifecycleStopStartCycles: repeated start/stop keeps exactly one
// container per service and the host port its first start handed out.
func TestLifecycleStopStartCycles(t *testing.T) {
	p := newInproc(t)
	s := p.createService(t, tools.ServiceCreateInput{Name: "cycles"})
	if s.Port != 0 {
		t.Fatalf("created with port %d before any start", s.Port)
	}
	var containers []string
	for i := 1; i <= 3; i++ {
		out, _, err := p.startWait(t, s.ID, 120)
		if err != nil {
			t.Fatalf("cycle %d: start: %v", i, err)
		}
		if i == 1 {
			s.Port = out.Service.Port
		}
		if out.Service.Port == 0 || out.Service.Port != s.Port {
			t.Errorf("cycle %d: port %d, the first start got %d", i, out.Service.Port, s.Port)
		}
		if out.Service.Run != i {
			t.Errorf("cycle %d: run %d", i, out.Service.Run)
		}
		if code := httpGetStatus(out.Service.Endpoint + "/health"); code != 200 {
			t.Errorf("cycle %d: /health answered %d while running", i, code)
		}
		containers = append(containers, out.Service.ContainerID)
		var stop tools.StopOutput
		p.call(t, "service_stop", tools.ServiceRef{ServiceID: s.ID}, &stop)
		if stop.Service.Status != services.StatusStopped {
			t.Fatalf("cycle %d: stop: status %s", i, stop.Service.Status)
		}
		cs := containerStates(t, s.ID)
		if len(cs) != 1 || !strings.HasSuffix(cs[0], " exited") {
			t.Errorf("cycle %d: after stop want exactly one exited container, got %v", i, cs)
		}
	}
	if r := runningContainers(t, s.ID); len(r) != 0 {
		t.Errorf("running containers after the final stop: %v", r)
	}
	if st := p.status(t, s.ID); st.Port != s.Port || st.Status != services.StatusStopped {
		t.Errorf("final record: port %d status %s; want port %d stopped", st.Port, st.Status, s.Port)
	}
	seen := map[string]bool{}
	for _, c := range containers {
		if seen[c] {
			t.Errorf("container %s reused across runs: %v", c, containers)
		}
		seen[c] = true
	}
}

// TestLifecycleConcurrentStarts: many simultaneous starts of one service
// make one start, one container.
func TestLifecycleConcurrentStarts(t *testing.T) {
	p := newInproc(t)
	s := p.createService(t, tools.ServiceCreateInput{Name: "concurrent"})
	const n = 10
	var wg sync.WaitGroup
	gate := make(chan struct{})
	outs := make([]tools.StartOutput, n)
	errsOut := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			errsOut[i] = p.try(t, "service_start", tools.ServiceStartInput{ServiceID: s.ID, TimeoutSeconds: 120}, &outs[i], nil)
		}()
	}
	close(gate)
	wg.Wait()
	began := 0
	for i := range n {
		if errsOut[i] != nil {
			t.Errorf("call %d: %v", i, errsOut[i])
			continue
		}
		switch outs[i].Note {
		case "":
			began++
		case "a start is already in progress", "service is already running":
		default:
			t.Errorf("call %d: unexpected note %q", i, outs[i].Note)
		}
	}
	if began != 1 {
		t.Errorf("%d calls began a start, want exactly 1", began)
	}
	var final services.Service
	p.call(t, "service_wait", tools.ServiceWaitInput{ServiceID: s.ID, For: "running", TimeoutSeconds: 120}, &final)
	if final.Status != services.StatusRunning || final.Run != 1 {
		t.Errorf("after the starts: status %s run %d; want running run 1", final.Status, final.Run)
	}
	if cs := containerStates(t, s.ID); len(cs) != 1 {
		t.Errorf("containers of the service: %v; want exactly one", cs)
	}
}

// TestLifecycleStopDuringStart: a stop while the engine loads cancels the
// start cleanly — stopped, not failed — and the container is stopped.
func TestLifecycleStopDuringStart(t *testing.T) {
	p := newInproc(t)
	s := p.createService(t, tools.ServiceCreateInput{Name: "slow", Env: []string{"SIM_STARTUP=60s", "SIM_TIME_SCALE=1"}})
	var out tools.StartOutput
	p.call(t, "service_start", tools.ServiceStartInput{ServiceID: s.ID, TimeoutSeconds: 120}, &out)
	p.waitFor(t, s.ID, 60*time.Second, "loading", func(x services.Service) bool {
		if x.Status != services.StatusCreating && x.Status != services.StatusCreated {
			t.Fatalf("status %s (reason %q) before the stop", x.Status, x.Reason)
		}
		return x.Status == services.StatusCreating && x.Phase == services.PhaseLoading
	})
	if r := runningContainers(t, s.ID); len(r) != 1 {
		t.Fatalf("while loading, running containers: %v", r)
	}
	var stop tools.StopOutput
	p.call(t, "service_stop", tools.ServiceRef{ServiceID: s.ID}, &stop)
	if stop.Service.Status != services.StatusStopped {
		t.Errorf("stop returned status %s (reason %q), want stopped", stop.Service.Status, stop.Service.Reason)
	}
	st := p.status(t, s.ID)
	if st.Status != services.StatusStopped {
		t.Errorf("status %s (reason %q), want stopped", st.Status, st.Reason)
	}
	if r := runningContainers(t, s.ID); len(r) != 0 {
		t.Errorf("running containers after the stop: %v", r)
	}
	var hist tools.EventsOutput
	p.call(t, "service_events", tools.ServiceEventsInput{ServiceID: s.ID, After: out.EventsFrom}, &hist)
	var statuses []string
	for _, h := range hist.Items {
		if h.Type == events.TypeStatus {
			statuses = append(statuses, h.Status)
		}
	}
	if want := []string{"creating", "stopping", "stopped"}; !slices.Equal(statuses, want) {
		t.Errorf("status events %v, want %v", statuses, want)
	}
}

// TestLifecycleBadInput: invalid requests through HTTP get the right error
// kind (and field), and leave nothing behind.
func TestLifecycleBadInput(t *testing.T) {
	p := newInproc(t)
	var before, after tools.List[services.Service]
	p.call(t, "service_list", struct{}{}, &before)
	var modelsBefore, modelsAfter tools.List[struct {
		ID string `json:"id"`
	}]
	p.call(t, "model_list", struct{}{}, &modelsBefore)

	check := func(t *testing.T, op string, in any, kind errs.Kind, field string) {
		t.Helper()
		err := p.try(t, op, in, nil, nil)
		if err == nil {
			t.Fatalf("%s %+v succeeded", op, in)
		}
		if k := errs.KindOf(err); k != kind {
			t.Errorf("%s: kind %s, want %s: %v", op, k, kind, err)
		}
		if field != "" && errs.FieldOf(err) != field {
			t.Errorf("%s: field %q, want %q: %v", op, errs.FieldOf(err), field, err)
		}
	}

	t.Run("unknown service", func(t *testing.T) {
		for _, op := range []string{"service_status", "service_start", "service_stop", "service_delete"} {
			check(t, op, tools.ServiceRef{ServiceID: "svc-doesnotexist"}, errs.NotFound, "")
		}
		if code := httpGetStatus(p.URL + "/api/service/status?service_id=svc-doesnotexist"); code != 404 {
			t.Errorf("GET status of an unknown service: HTTP %d, want 404", code)
		}
	})
	t.Run("unknown engine", func(t *testing.T) {
		check(t, "service_create", tools.ServiceCreateInput{ModelID: p.modelID, EngineType: "nope"}, errs.InvalidArgument, "engine_type")
	})
	t.Run("missing model path", func(t *testing.T) {
		check(t, "model_add", tools.ModelAddInput{Path: filepath.Join(t.TempDir(), "no-such-model")}, errs.InvalidArgument, "path")
	})
	t.Run("path traversal to a non-model dir", func(t *testing.T) {
		dir := t.TempDir()
		trav := dir + strings.Repeat("/..", strings.Count(dir, "/")) + "/etc"
		if _, err := os.Stat(trav); err != nil {
			t.Skipf("%s: %v", trav, err)
		}
		check(t, "model_add", tools.ModelAddInput{Path: trav}, errs.InvalidArgument, "path")
		check(t, "model_add", tools.ModelAddInput{Path: "../../etc"}, errs.InvalidArgument, "path")
	})
	t.Run("invalid create fields", func(t *testing.T) {
		check(t, "service_create", tools.ServiceCreateInput{ModelID: p.modelID, EngineType: "vllm", Name: "bad name!"}, errs.InvalidArgument, "name")
		check(t, "service_create", tools.ServiceCreateInput{ModelID: p.modelID, EngineType: "vllm", Env: []string{"NOEQUALS"}}, errs.InvalidArgument, "env")
		check(t, "service_create", tools.ServiceCreateInput{ModelID: p.modelID, EngineType: "vllm", Args: []string{"--port=9000"}}, errs.InvalidArgument, "args")
		check(t, "service_create", tools.ServiceCreateInput{ModelID: p.modelID, EngineType: "vllm", Env: []string{"NVIDIA_VISIBLE_DEVICES=all"}}, errs.InvalidArgument, "env")
		check(t, "service_create", map[string]any{"model_id": p.modelID, "engine_type": "vllm", "bogus": 1}, errs.InvalidArgument, "bogus")
	})

	p.call(t, "service_list", struct{}{}, &after)
	if after.Total != before.Total {
		t.Errorf("service_list total %d → %d: a failed request left a record", before.Total, after.Total)
	}
	p.call(t, "model_list", struct{}{}, &modelsAfter)
	if modelsAfter.Total != modelsBefore.Total {
		t.Errorf("model_list total %d → %d: a failed model_add left a record", modelsBefore.Total, modelsAfter.Total)
	}
}
