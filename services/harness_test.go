package services

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/engines"
	"aima/events"
	"aima/internal/testenv/testports"
	"aima/models"
	"aima/runtime"
	"aima/runtime/fakeruntime"
	"aima/settings"
	"aima/state"
)

// The unit tests of the lifecycle run the real Manager against
// runtime/fakeruntime: no Docker, so they run in -short and full runs
// alike. Timings are shortened (probes every few ms), and the tests wait
// on the event bus or the fake's state, never on a sleep.

// engineImage is the vllm image of the harness's catalog.
const engineImage = "fake/vllm:1"

// waitLimit bounds every wait of a test: a guard against a hang, not a
// timing assertion.
const waitLimit = 20 * time.Second

// harness is one daemon's worth of lifecycle: a manager over a store and a
// fake runtime. restart replaces the manager as a daemon restart does.
type harness struct {
	t     *testing.T
	fr    *fakeruntime.Runtime
	store state.Store
	opts  Options
	m     *Manager
	logs  *strings.Builder
	logMu *sync.Mutex
	// trail holds every record a status change stored, in order.
	trail []Service
}

// harnessOptions are the shortened timings of the tests.
func harnessOptions() Options {
	return Options{
		StartTimeout: waitLimit, StopTimeout: 200 * time.Millisecond, HealthInterval: 5 * time.Millisecond,
		LivenessInterval: 10 * time.Millisecond, UnhealthyGrace: 60 * time.Millisecond, RestartBackoff: 20 * time.Millisecond,
	}
}

// newHarness builds a manager on a memory store and a fake runtime that has
// the engine image. adjust, if set, changes the options first. The manager
// does not run its watchers until run is called (as the daemon does after
// building it).
func newHarness(t *testing.T, adjust func(*Options)) *harness {
	t.Helper()
	return newHarnessOn(t, state.NewMemory(), adjust)
}

// newHarnessOn is newHarness on a given store (one with records already, or
// one that fails).
func newHarnessOn(t *testing.T, store state.Store, adjust func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, fr: fakeruntime.New(fakeruntime.WithImages(engineImage)), store: store, opts: harnessOptions(),
		logs: &strings.Builder{}, logMu: &sync.Mutex{}}
	if adjust != nil {
		adjust(&h.opts)
	}
	h.m = h.newManager()
	t.Cleanup(func() {
		h.closeManager()
		h.fr.Close()
		if t.Failed() {
			h.logMu.Lock()
			t.Logf("manager log:\n%s", h.logs.String())
			h.logMu.Unlock()
		}
	})
	return h
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (h *harness) newManager() *Manager {
	catalog, err := engines.NewCatalog(map[string]settings.EngineOverride{"vllm": {Image: engineImage, GPUs: "none"}})
	if err != nil {
		h.t.Fatal(err)
	}
	opts := h.opts
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{h.logMu, h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Journal = events.NewJournal(h.store, func(err error) { opts.Logger.Warn("event journal", "err", err) })
	bus := events.NewBus(events.WithJournal(opts.Journal))
	m := NewManager(h.store, h.fr, bus, catalog, models.NewRegistry(h.store), opts)
	m.rewatchDelay, m.resubscribeDelay = 5*time.Millisecond, 5*time.Millisecond
	// A runtime call a stop cut short is given up quickly (tests of what
	// Docker does after the stop set it longer).
	m.mutationGrace = 20 * time.Millisecond
	m.OnTransition(func(tr Transition) {
		observeTransition(h.t, tr)
		if tr.Deleted {
			return
		}
		h.logMu.Lock()
		h.trail = append(h.trail, tr.Service)
		h.logMu.Unlock()
	})
	return m
}

// run starts the manager's reconcile and watchers, as the daemon does.
func (h *harness) run() {
	h.t.Helper()
	if err := h.m.Run(); err != nil {
		h.t.Fatalf("Run: %v", err)
	}
}

// restart ends this manager as a daemon that stops does (records stay,
// containers keep running) and builds and runs a new one on the same store
// and runtime.
func (h *harness) restart() {
	h.t.Helper()
	h.closeManager()
	h.m = h.newManager()
	h.run()
}

// logTexts reads a service's log to its end and returns its texts.
func (h *harness) logTexts(id string, req LogsRequest) ([]string, error) {
	h.t.Helper()
	ls, err := h.m.Logs(h.ctx(), id, req)
	if err != nil {
		return nil, err
	}
	var text []string
	err = ls.Read(h.ctx(), func(l runtime.LogLine) error {
		text = append(text, l.Text)
		return nil
	})
	return text, err
}

// closeManager ends the manager and then its journal, as the daemon does.
func (h *harness) closeManager() {
	h.m.Close()
	h.m.opts.Journal.Close()
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(h.t.Context(), waitLimit)
	h.t.Cleanup(cancel)
	return ctx
}

// loopbackPort returns a loopback port that is free, below the kernel's
// ephemeral ports (see testports: a port there can be taken as the source
// port of a connection and then be "in use" at the service's start).
func loopbackPort(t *testing.T) int { return testports.FreePort(t) }

// create makes a vllm service on a remote model reference with its own
// port; script, if its Steps are set, is what its containers run.
func (h *harness) create(script fakeruntime.Script, adjust func(*CreateSpec)) Service {
	h.t.Helper()
	spec := CreateSpec{ModelID: "org/tiny", EngineType: "vllm", Port: loopbackPort(h.t)}
	if adjust != nil {
		adjust(&spec)
	}
	s, err := h.m.Create(h.ctx(), spec)
	if err != nil {
		h.t.Fatalf("create: %v", err)
	}
	h.fr.SetScript(map[string]string{runtime.LabelService: s.ID}, script)
	return s
}

func (h *harness) start(id string) StartResult {
	h.t.Helper()
	res, err := h.m.Start(h.ctx(), id, 0)
	if err != nil {
		h.t.Fatalf("start %s: %v", id, err)
	}
	return res
}

func (h *harness) get(id string) Service {
	h.t.Helper()
	s, err := h.m.Get(h.ctx(), id)
	if err != nil {
		h.t.Fatalf("get %s: %v", id, err)
	}
	return s
}

// await blocks until the service's record satisfies cond and the status
// event of that record is published (so the history agrees), waking on each
// of its events; it fails the test after waitLimit.
func (h *harness) await(id, what string, cond func(Service) bool) Service {
	h.t.Helper()
	ctx := h.ctx()
	sub := h.m.Bus().Subscribe(id, 0)
	for {
		s, err := h.m.col.Get(ctx, id)
		if err == nil && cond(s) && h.lastStatus(id) == s.Status {
			return s
		}
		if _, err := sub.Next(ctx); err != nil {
			h.t.Fatalf("service %s: not %s after %s: %+v\nhistory:\n%s", id, what, waitLimit, s, h.history(id))
		}
	}
}

// awaitFact polls cond, for facts no event announces (the manager's view
// of the runtime's reachability).
func (h *harness) awaitFact(what string, cond func() bool) {
	h.t.Helper()
	ctx := h.ctx()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			h.t.Fatalf("not %s after %s", what, waitLimit)
		}
	}
}

// awaitStatus waits for a status.
func (h *harness) awaitStatus(id string, want Status) Service {
	h.t.Helper()
	return h.await(id, string(want), func(s Service) bool { return s.Status == want })
}

// awaitPhase waits until the start reached phase p.
func (h *harness) awaitPhase(id string, p Phase) Service {
	h.t.Helper()
	return h.await(id, "in phase "+string(p), func(s Service) bool { return s.Status == StatusCreating && s.Phase == p })
}

// container waits for the service's container to satisfy cond.
func (h *harness) container(id string, cond func(runtime.ContainerState) bool) runtime.ContainerState {
	h.t.Helper()
	c, err := h.fr.WaitFor(h.ctx(), map[string]string{runtime.LabelService: id}, cond)
	if err != nil {
		h.t.Fatalf("service %s: %v\nhistory:\n%s", id, err, h.history(id))
	}
	return c
}

// stored returns the first record of the service stored with status st.
func (h *harness) stored(id string, st Status) (Service, bool) {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	for _, s := range h.trail {
		if s.ID == id && s.Status == st {
			return s, true
		}
	}
	return Service{}, false
}

// history renders the service's events.
func (h *harness) history(id string) string {
	var b strings.Builder
	for _, ev := range h.m.Bus().History(id, 0) {
		fmt.Fprintf(&b, "  %d %-8s %-8s %-12s %s\n", ev.Seq, ev.Type, ev.Status, ev.Phase, ev.Message)
	}
	return b.String()
}

// lastStatus is the status of the service's last status event (created
// when there is none yet).
func (h *harness) lastStatus(id string) Status {
	st := h.statuses(id)
	if len(st) == 0 {
		return StatusCreated
	}
	return st[len(st)-1]
}

// statuses lists the status events of the service, in order.
func (h *harness) statuses(id string) []Status {
	var out []Status
	for _, ev := range h.m.Bus().History(id, 0) {
		if ev.Type == events.TypeStatus {
			out = append(out, Status(ev.Status))
		}
	}
	return out
}

// wantFailed checks a failed record's facts.
func wantFailed(t *testing.T, s Service, kind FailureKind, phase Phase, reasonHas ...string) {
	t.Helper()
	if s.Status != StatusFailed || s.Failure != kind || s.Phase != phase {
		t.Errorf("status %s failure %q phase %q, want failed %q in %q (reason %q)", s.Status, s.Failure, s.Phase, kind, phase, s.Reason)
	}
	for _, want := range reasonHas {
		if !strings.Contains(s.Reason, want) {
			t.Errorf("reason %q lacks %q", s.Reason, want)
		}
	}
}

// vllmBoot is a vLLM-like start-up: milestones, the ready line, healthy.
func vllmBoot() []fakeruntime.Step {
	return []fakeruntime.Step{
		fakeruntime.Log("(APIServer pid=1) INFO 10-25 13:08:31 [api_server.py:1882] vLLM API server version 0.11.0"),
		fakeruntime.Log("(EngineCore_DP0 pid=7) INFO 10-25 13:08:33 [model.py:547] Resolved architecture: Qwen2ForCausalLM"),
		fakeruntime.Log("(EngineCore_DP0 pid=7) INFO 10-25 13:08:36 [default_loader.py:267] Loading weights took 1.52 seconds"),
		fakeruntime.Log("(APIServer pid=1) INFO 10-25 13:08:41 [api_server.py:1957] Starting vLLM API server 0 on http://0.0.0.0:8000"),
		fakeruntime.Log("(APIServer pid=1) INFO:     Application startup complete."),
		fakeruntime.Healthy(),
	}
}

// serving is an engine that boots like vLLM and serves until stopped.
func serving() fakeruntime.Script { return fakeruntime.Script{Steps: vllmBoot()} }

// loadsUntil is an engine that loads until gate is closed, then boots like
// vLLM.
func loadsUntil(gate <-chan struct{}) fakeruntime.Script {
	return fakeruntime.Script{Steps: append([]fakeruntime.Step{fakeruntime.Log("loading"), fakeruntime.Gate(gate)}, vllmBoot()...)}
}

// loadsForever is an engine that never gets ready.
func loadsForever() fakeruntime.Script {
	return fakeruntime.Script{Steps: []fakeruntime.Step{fakeruntime.Log("loading")}}
}

// The transitions the tests exercised, for TestMain's coverage check.
var (
	seenMu    sync.Mutex
	seenEdges = map[[2]Status]bool{}
)

// observeTransition (a transition hook) records an edge and checks the failure-kind invariant:
// set, from the closed set, exactly when the status is failed.
func observeTransition(t *testing.T, tr Transition) {
	if tr.Deleted {
		return
	}
	from, s := tr.From, tr.Service
	seenMu.Lock()
	seenEdges[[2]Status{from, s.Status}] = true
	seenMu.Unlock()
	switch {
	case s.Status == StatusFailed && !validFailure(s.Failure):
		t.Errorf("service %s failed with failure kind %q (reason %q)", s.ID, s.Failure, s.Reason)
	case s.Status != StatusFailed && s.Failure != "":
		t.Errorf("service %s is %s with failure kind %q", s.ID, s.Status, s.Failure)
	}
}

func validFailure(k FailureKind) bool {
	for _, v := range AllFailureKinds {
		if k == v {
			return true
		}
	}
	return false
}
