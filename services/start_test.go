package services

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"aima/errs"
	"aima/events"
	"aima/runtime"
	"aima/runtime/fakeruntime"
)

// phases lists the phase events of one run, in order.
func (h *harness) phases(id string, run int) []Phase {
	var out []Phase
	for _, ev := range h.m.Bus().History(id, 0) {
		if ev.Type == events.TypePhase && ev.Run == run {
			out = append(out, Phase(ev.Phase))
		}
	}
	return out
}

func (h *harness) messages(id string) []string {
	var out []string
	for _, ev := range h.m.Bus().History(id, 0) {
		out = append(out, ev.Message)
	}
	return out
}

// A start goes through every phase in order and ends running once the
// engine's port answers 200; the engine's milestones become messages, and
// the container carries the service's labels with the run number.
func TestStartGoesThroughEveryPhase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	// The engine answers only once its ready line has been seen, so every
	// milestone is read before the start ends.
	boot := vllmBoot()
	ready := make(chan struct{})
	s := h.create(fakeruntime.Script{Steps: append(boot[:len(boot)-1:len(boot)-1], fakeruntime.Gate(ready), fakeruntime.Healthy())}, nil)
	res := h.start(s.ID)
	if res.Service.Status != StatusCreating || res.Service.Run != 1 || res.Note != "" {
		t.Fatalf("start result %+v", res)
	}
	h.awaitPhase(s.ID, PhaseHealthCheck)
	close(ready)
	got := h.awaitStatus(s.ID, StatusRunning)
	if ph := h.phases(s.ID, 1); !slices.Equal(ph, StartPhases) {
		t.Errorf("phases %v, want %v", ph, StartPhases)
	}
	if st := h.statuses(s.ID); !slices.Equal(st, []Status{StatusCreating, StatusRunning}) {
		t.Errorf("statuses %v", st)
	}
	msgs := strings.Join(h.messages(s.ID), "\n")
	for _, want := range []string{"image " + engineImage + " is present", "resolved architecture Qwen2ForCausalLM", "weights loaded in 1.52 s", "answered 200"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("messages lack %q:\n%s", want, msgs)
		}
	}
	if first := h.m.Bus().History(s.ID, res.FromSeq); len(first) == 0 || first[0].Phase != string(PhaseCleanup) {
		t.Errorf("events after FromSeq do not begin with the cleanup phase: %v", first)
	}
	if got.ReadyAt == nil || got.DeadlineAt != nil || got.Phase != "" || got.Failure != "" || got.ContainerID == "" {
		t.Errorf("running record %+v", got)
	}
	c := h.container(s.ID, fakeruntime.Running)
	if c.ID != got.ContainerID || c.Labels[runtime.LabelRun] != "1" || c.Labels[runtime.LabelManaged] != "true" || c.Labels[runtime.LabelPort] != strconv.Itoa(s.Port) {
		t.Errorf("container %+v of record %+v", c, got)
	}
	again := h.start(s.ID)
	if again.Note == "" || again.Service.Run != 1 {
		t.Errorf("start on a running service: %+v", again)
	}
}

// An absent image is pulled with byte progress per layer first.
func TestStartPullsAbsentImage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.fr.RemoveImage(engineImage)
	h.fr.SetPull(engineImage, fakeruntime.Pull{Progress: []runtime.PullProgress{
		{Layer: "l1", Status: "Downloading", Current: 512, Total: 1024},
		{Layer: "l1", Status: "Downloading", Current: 1024, Total: 1024},
		{Layer: "l1", Status: "Pull complete"},
	}})
	h.run()
	s := h.create(serving(), nil)
	h.start(s.ID)
	h.awaitStatus(s.ID, StatusRunning)
	var progress []string
	for _, ev := range h.m.Bus().History(s.ID, 0) {
		if ev.Type == events.TypeProgress {
			progress = append(progress, ev.Message)
		}
	}
	if len(progress) == 0 || !strings.Contains(progress[len(progress)-1], "l1: Pull complete") {
		t.Errorf("pull progress %v", progress)
	}
	if msgs := strings.Join(h.messages(s.ID), "\n"); !strings.Contains(msgs, "pulled image "+engineImage) {
		t.Errorf("messages:\n%s", msgs)
	}
}

// Every way a start fails ends in failed with the kind, the phase and the
// reason, and no container left running.
func TestStartFailures(t *testing.T) {
	t.Parallel()
	engineError := "ValueError: Invalid repository ID or local directory specified: '/models/x'."
	cases := []struct {
		name   string
		script fakeruntime.Script
		setup  func(h *harness, s Service)
		kind   FailureKind
		phase  Phase
		reason []string
		check  func(t *testing.T, h *harness, s Service)
	}{
		{
			name: "exit during loading with the engine's error line",
			script: fakeruntime.Script{Steps: []fakeruntime.Step{
				fakeruntime.Log("(APIServer pid=1) INFO 10-25 13:08:31 [api_server.py:1882] vLLM API server version 0.11.0"),
				fakeruntime.Stderr("(APIServer pid=1) Traceback (most recent call last):"),
				fakeruntime.Stderr("(APIServer pid=1) " + engineError),
				fakeruntime.Exit(1),
			}},
			kind: FailureExited, phase: PhaseLoading,
			reason: []string{"container exited with code 1 during loading", engineError},
			check: func(t *testing.T, h *harness, s Service) {
				if s.ExitCode == nil || *s.ExitCode != 1 || s.OOMKilled {
					t.Errorf("exit code %v oom %v", s.ExitCode, s.OOMKilled)
				}
				if s.EngineError != engineError {
					t.Errorf("engine_error %q, want %q", s.EngineError, engineError)
				}
				if !slices.ContainsFunc(s.LogTail, func(l string) bool { return strings.Contains(l, engineError) }) {
					t.Errorf("log tail %q lacks the engine's line", s.LogTail)
				}
			},
		},
		{
			name:   "OOM kill during loading",
			script: fakeruntime.Script{Steps: []fakeruntime.Step{fakeruntime.Log("loading weights"), fakeruntime.OOM()}},
			kind:   FailureOOM, phase: PhaseLoading,
			reason: []string{"code 137", "(OOM killed)"},
			check: func(t *testing.T, h *harness, s Service) {
				if !s.OOMKilled || s.ExitCode == nil || *s.ExitCode != 137 {
					t.Errorf("oom %v exit code %v", s.OOMKilled, s.ExitCode)
				}
			},
		},
		{
			name: "pull of an image the registry does not have",
			setup: func(h *harness, _ Service) {
				h.fr.RemoveImage(engineImage)
			},
			kind: FailureImageUnavailable, phase: PhasePull, reason: []string{"pull " + engineImage, "not found"},
		},
		{
			name: "pull from an unreachable registry",
			setup: func(h *harness, _ Service) {
				h.fr.RemoveImage(engineImage)
				h.fr.SetPull(engineImage, fakeruntime.Pull{Err: errs.New(errs.Unavailable, "registry unreachable")})
			},
			kind: FailureImageUnavailable, phase: PhasePull, reason: []string{"registry unreachable"},
		},
		{
			name: "create refused",
			setup: func(h *harness, _ Service) {
				h.fr.Inject(fakeruntime.OpCreate, fakeruntime.Fault{Err: errs.New(errs.InvalidArgument, "invalid mount config")})
			},
			kind: FailureRuntimeError, phase: PhaseCreate, reason: []string{"create container: invalid mount config"},
		},
		{
			name: "start refused",
			setup: func(h *harness, _ Service) {
				h.fr.Inject(fakeruntime.OpStart, fakeruntime.Fault{Err: errs.New(errs.Internal, "OCI runtime create failed")})
			},
			kind: FailureRuntimeError, phase: PhaseStart, reason: []string{"start container: OCI runtime create failed"},
		},
		{
			name: "host port held by another process",
			setup: func(h *harness, s Service) {
				l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))
				if err != nil {
					h.t.Fatal(err)
				}
				h.t.Cleanup(func() { l.Close() })
			},
			kind: FailurePortInUse, phase: PhaseCreate, reason: []string{"in use by another process"},
			check: func(t *testing.T, h *harness, _ Service) {
				if n := h.fr.Calls(fakeruntime.OpCreate); n != 0 {
					t.Errorf("%d containers created for a port in use", n)
				}
			},
		},
		{
			name:  "runtime unreachable",
			setup: func(h *harness, _ Service) { h.fr.Cut() },
			kind:  FailureRuntimeUnavailable, phase: PhaseCleanup, reason: []string{"cleanup:", "unavailable"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.run()
			s := h.create(tc.script, nil)
			if tc.setup != nil {
				tc.setup(h, s)
			}
			h.start(s.ID)
			got := h.awaitStatus(s.ID, StatusFailed)
			wantFailed(t, got, tc.kind, tc.phase, tc.reason...)
			if got.DeadlineAt != nil {
				t.Errorf("deadline %v left on a failed start", got.DeadlineAt)
			}
			if tc.check != nil {
				tc.check(t, h, got)
			}
			for _, c := range h.fr.Containers(map[string]string{runtime.LabelService: s.ID}) {
				if c.Running {
					t.Errorf("container %s still runs after the failed start", c.Name)
				}
			}
		})
	}
}

// A start that does not finish in time fails with failure timeout in the
// phase it was in, whichever phase that is; a container it made is
// stopped.
func TestStartTimeoutInEachPhase(t *testing.T) {
	t.Parallel()
	hang := fakeruntime.Fault{Hang: true}
	cases := []struct {
		phase  Phase
		script fakeruntime.Script
		setup  func(h *harness)
	}{
		{PhaseCleanup, serving(), func(h *harness) { h.fr.Inject(fakeruntime.OpRemove, hang) }},
		{PhasePull, serving(), func(h *harness) { h.fr.Inject(fakeruntime.OpImageExists, hang) }},
		{PhaseCreate, serving(), func(h *harness) { h.fr.Inject(fakeruntime.OpCreate, hang) }},
		{PhaseStart, serving(), func(h *harness) { h.fr.Inject(fakeruntime.OpStart, hang) }},
		{PhaseLoading, fakeruntime.Script{Steps: []fakeruntime.Step{fakeruntime.Log("loading forever")}}, nil},
		{PhaseHealthCheck, fakeruntime.Script{Steps: []fakeruntime.Step{fakeruntime.Log("INFO:     Application startup complete.")}}, nil},
	}
	for _, tc := range cases {
		t.Run(string(tc.phase), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.run()
			s := h.create(tc.script, nil)
			if tc.phase == PhaseCleanup {
				// A container of an earlier run for the cleanup to remove.
				h.start(s.ID)
				h.awaitStatus(s.ID, StatusRunning)
				if _, err := h.m.Stop(h.ctx(), s.ID); err != nil {
					t.Fatal(err)
				}
			}
			if tc.setup != nil {
				tc.setup(h)
			}
			// The deadline only has to outlast the phases before the one
			// that hangs (milliseconds on the fake runtime, but hundreds on
			// a machine running other suites beside this one): the hang
			// waits for it whatever its length.
			if _, err := h.m.Start(h.ctx(), s.ID, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			got := h.awaitStatus(s.ID, StatusFailed)
			wantFailed(t, got, FailureTimeout, tc.phase, "timed out in phase "+string(tc.phase))
			for _, c := range h.fr.Containers(map[string]string{runtime.LabelService: s.ID}) {
				if c.Running {
					t.Errorf("container %s still runs after the timeout", c.Name)
				}
			}
		})
	}
}

// A stop during a start cancels it: stopping, then stopped, never failed,
// and no container runs or is created afterwards.
func TestStopDuringStart(t *testing.T) {
	t.Parallel()
	for _, phase := range []Phase{PhaseCreate, PhaseLoading} {
		t.Run(string(phase), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.run()
			s := h.create(loadsForever(), nil)
			if phase == PhaseCreate {
				h.fr.Inject(fakeruntime.OpCreate, fakeruntime.Fault{Hang: true})
			}
			h.start(s.ID)
			h.awaitPhase(s.ID, phase)
			res, err := h.m.Stop(h.ctx(), s.ID)
			if err != nil || res.Service.Status != StatusStopped {
				t.Fatalf("stop: %+v %v", res, err)
			}
			if st := h.statuses(s.ID); !slices.Equal(st, []Status{StatusCreating, StatusStopping, StatusStopped}) {
				t.Errorf("statuses %v", st)
			}
			h.fr.Clear(fakeruntime.OpCreate)
			for _, c := range h.fr.Containers(map[string]string{runtime.LabelService: s.ID}) {
				if c.Running {
					t.Errorf("container %s runs after the stop", c.Name)
				}
			}
			if got := h.get(s.ID); got.Status != StatusStopped || got.Phase != "" || got.DeadlineAt != nil {
				t.Errorf("record %+v", got)
			}
		})
	}
}

// An API cut during loading does not fail the start: the engine is probed
// directly and the start ends running; the record is stale until the
// runtime is back and reconciled.
func TestStartSurvivesAPICut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	gate := make(chan struct{})
	s := h.create(loadsUntil(gate), nil)
	h.start(s.ID)
	h.awaitPhase(s.ID, PhaseLoading)
	h.fr.Cut()
	close(gate)
	got := h.awaitStatus(s.ID, StatusRunning)
	h.awaitFact("stale", func() bool { return !h.m.DockerReachable() })
	if !h.get(s.ID).Stale {
		t.Error("not stale while the runtime is cut")
	}
	h.fr.Restore()
	h.awaitFact("reconciled", func() bool { return h.m.DockerReachable() })
	if now := h.get(s.ID); now.Status != StatusRunning || now.Stale || now.ContainerID != got.ContainerID {
		t.Errorf("after the cut: %+v", now)
	}
}

// A container that dies while the API is cut is reported once the API is
// back, with its exit code and the engine's line (the start's wait is
// retried, not failed, while the API is away).
func TestStartExitDuringAPICut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	gate := make(chan struct{})
	s := h.create(fakeruntime.Script{Steps: []fakeruntime.Step{
		fakeruntime.Log("loading"), fakeruntime.Gate(gate),
		fakeruntime.Stderr("RuntimeError: CUDA error: an illegal memory access was encountered"), fakeruntime.Exit(1),
	}}, nil)
	h.start(s.ID)
	h.awaitPhase(s.ID, PhaseLoading)
	h.fr.Cut()
	close(gate)
	h.container(s.ID, fakeruntime.Exited)
	if got := h.get(s.ID); got.Status != StatusCreating {
		t.Fatalf("the start ended while the runtime was cut: %+v", got)
	}
	h.fr.Restore()
	got := h.awaitStatus(s.ID, StatusFailed)
	wantFailed(t, got, FailureExited, PhaseLoading, "code 1", "CUDA error")
}
