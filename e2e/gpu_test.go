package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/client"
	"aima/errs"
	"aima/events"
	"aima/gpu"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/internal/testenv/fakesmi"
	"aima/services"
	"aima/tools"
)

// GPU tests: a fake nvidia-smi (internal/testenv/nvidia-smi) gives the
// GPU-less test machine an inventory, and gpu_attach: env hands GPUs to
// containers through NVIDIA_VISIBLE_DEVICES only, so the real Docker engine
// runs the simulator without an NVIDIA runtime.

// newInprocGPUs is newInproc with the fake GPUs of spec.
func newInprocGPUs(tb testing.TB, spec fakesmi.Spec) *inproc {
	tb.Helper()
	p, _ := newInprocFakeSMI(tb, spec)
	return p
}

// newInprocFakeSMI is newInprocGPUs that also returns the fake nvidia-smi.
func newInprocFakeSMI(tb testing.TB, spec fakesmi.Spec) (*inproc, *testenv.FakeSMI) {
	tb.Helper()
	testenv.RequireDocker(tb)
	fake := testenv.FakeNvidiaSMI(tb, spec)
	cfg := testenv.GPUConfig(tb, fake, testenv.SimConfigOptions{Image: testenv.EngineSimImage(tb)})
	d := daemontest.Start(tb, cfg, daemontest.Options{})
	p := &inproc{Daemon: d, c: client.New(d.URL)}
	p.modelID = p.addModel(tb, testenv.MakeModel(tb, "qwen-tiny"))
	return p, fake
}

// bigModel is a model directory whose safetensors index says 200 GiB of
// weights (the shards themselves need not exist for the estimate).
func bigModel(tb testing.TB) string {
	tb.Helper()
	dir := testenv.MakeModel(tb, "huge")
	index := fmt.Sprintf(`{"metadata":{"total_size":%d},"weight_map":{}}`, int64(200)<<30)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(index), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// containerEnv is the container's environment as Docker recorded it.
func containerEnv(t *testing.T, id string) []string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", "{{json .Config.Env}}", id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker inspect %s: %v: %s", id, err, out)
	}
	var env []string
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

// visibleDevices is every NVIDIA_VISIBLE_DEVICES entry of the container.
func visibleDevices(t *testing.T, containerID string) []string {
	t.Helper()
	var vals []string
	for _, kv := range containerEnv(t, containerID) {
		if v, ok := strings.CutPrefix(kv, gpu.EnvNvidiaVisible+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// assertRefusedInSchedule checks a start that was refused: failed in the
// schedule phase, no pull, no container.
func assertRefusedInSchedule(t *testing.T, s services.Service, evs []events.Event, reasonHas ...string) {
	t.Helper()
	if s.Status != services.StatusFailed || s.Phase != services.PhaseSchedule || s.Failure != services.FailureUnschedulable || s.GPULease != nil {
		t.Errorf("status %s phase %s failure %q lease %v, want failed unschedulable in schedule without a lease", s.Status, s.Phase, s.Failure, s.GPULease)
	}
	for _, w := range reasonHas {
		if !strings.Contains(s.Reason, w) {
			t.Errorf("reason %q lacks %q", s.Reason, w)
		}
	}
	if evs != nil {
		if got := phasesOf(evs); !slices.Equal(got, []string{"cleanup", "schedule"}) {
			t.Errorf("phases %v, want cleanup, schedule and nothing after", got)
		}
	}
	if cs := containerStates(t, s.ID); len(cs) != 0 {
		t.Errorf("refused service has containers %v", cs)
	}
}

// TestGPUAssignmentLifecycle drives an `aima start` subprocess with two
// 80 GiB GPUs: two services get a GPU each (NVIDIA_VISIBLE_DEVICES in
// docker inspect), a third is refused in schedule without a pull or a
// container, a stop frees a GPU for it, and the leases survive SIGKILL.
func TestGPUAssignmentLifecycle(t *testing.T) {
	testenv.RequireDocker(t)
	fake := testenv.FakeNvidiaSMI(t, testenv.TwoGPUs())
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.GPUConfig(t, fake, testenv.SimConfigOptions{Image: testenv.EngineSimImage(t)})})
	var model struct{ ID string }
	apiPost(t, d, "model/add", map[string]any{"path": testenv.MakeModel(t, "qwen-tiny")}, &model, 200)

	var inv tools.GPUListOutput
	if code := d.GetJSON(t, "/api/gpu/list", &inv); code != 200 || inv.Total != 2 || inv.Items[1].UUID != fakesmi.UUIDOf(1) || inv.Items[0].Total() != 80<<30 {
		t.Fatalf("gpu list %d: %+v", code, inv)
	}

	svc := map[string]services.Service{}
	for _, name := range []string{"a", "b", "c"} {
		var s services.Service
		apiPost(t, d, "service/create", tools.ServiceCreateInput{ModelID: model.ID, EngineType: "vllm", Name: "gpu-" + name}, &s, 200)
		if s.GPUs != "auto" {
			t.Errorf("default gpus %q, want auto", s.GPUs)
		}
		testenv.RemoveContainersWithLabel(t, "aima.service", s.ID)
		svc[name] = s
	}
	start := func(name string, wantCode int) tools.StartOutput {
		t.Helper()
		var out tools.StartOutput
		apiPost(t, d, "service/start", tools.ServiceStartInput{ServiceID: svc[name].ID, Wait: true, TimeoutSeconds: 120}, &out, wantCode)
		return out
	}
	status := func(name string) services.Service {
		t.Helper()
		var s services.Service
		d.GetJSON(t, "/api/service/status?service_id="+svc[name].ID, &s)
		return s
	}

	a, b := start("a", 200).Service, start("b", 200).Service
	if a.GPULease == nil || b.GPULease == nil || a.GPULease.Indexes() == b.GPULease.Indexes() {
		t.Fatalf("leases a %+v b %+v: want one GPU each", a.GPULease, b.GPULease)
	}
	for _, s := range []services.Service{a, b} {
		want := s.GPULease.Devices[0].UUID
		if got := visibleDevices(t, s.ContainerID); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: NVIDIA_VISIBLE_DEVICES %v, want exactly [%s]", s.Name, got, want)
		}
	}

	t.Run("third is refused in schedule", func(t *testing.T) {
		var errBody apiError
		apiPost(t, d, "service/start", tools.ServiceStartInput{ServiceID: svc["c"].ID, Wait: true, TimeoutSeconds: 60}, &errBody, 409)
		if errBody.Error.Code != string(errs.Conflict) || !strings.Contains(errBody.Error.Message, "held by service") {
			t.Errorf("error %+v", errBody.Error)
		}
		var hist tools.EventsOutput
		apiPost(t, d, "service/events", tools.ServiceEventsInput{ServiceID: svc["c"].ID}, &hist, 200)
		var evs []events.Event
		for _, h := range hist.Items {
			evs = append(evs, h.Event)
		}
		assertRefusedInSchedule(t, status("c"), evs, "held by service "+a.ID, "held by service "+b.ID, "GiB")
	})

	t.Run("list and CLI show the GPUs", func(t *testing.T) {
		d.GetJSON(t, "/api/gpu/list", &inv)
		for _, dev := range inv.Items {
			if len(dev.HeldBy) != 1 {
				t.Errorf("GPU %d held by %+v, want one service", dev.Index, dev.HeldBy)
			}
		}
		out := d.MustCLI(t, "service", "list").Stdout
		if !strings.Contains(out, "GPUS") || !strings.Contains(out, a.GPULease.Indexes()) {
			t.Errorf("service list table:\n%s", out)
		}
		if out := d.MustCLI(t, "gpu", "list").Stdout; !strings.Contains(out, fakesmi.UUIDOf(0)) || !strings.Contains(out, a.ID) {
			t.Errorf("gpu list table:\n%s", out)
		}
		if out := d.MustCLI(t, "doctor").Stdout; !strings.Contains(out, "2 GPU(s)") {
			t.Errorf("doctor:\n%s", out)
		}
	})

	t.Run("stop frees a GPU for the third", func(t *testing.T) {
		var stopped tools.StopOutput
		apiPost(t, d, "service/stop", tools.ServiceRef{ServiceID: a.ID}, &stopped, 200)
		if stopped.Service.GPULease != nil {
			t.Errorf("stopped service keeps its lease %+v", stopped.Service.GPULease)
		}
		c := start("c", 200).Service
		if c.GPULease == nil || c.GPULease.Indexes() != a.GPULease.Indexes() {
			t.Fatalf("c lease %+v, want a's GPU %s", c.GPULease, a.GPULease.Indexes())
		}
		if got := visibleDevices(t, c.ContainerID); !slices.Equal(got, c.GPULease.UUIDs()) {
			t.Errorf("c: NVIDIA_VISIBLE_DEVICES %v", got)
		}
	})

	t.Run("leases survive SIGKILL and restart", func(t *testing.T) {
		d.Kill(t)
		d.Restart(t)
		for _, name := range []string{"b", "c"} {
			if s := status(name); s.Status != services.StatusRunning || s.GPULease == nil {
				t.Errorf("%s after restart: %s lease %v", name, s.Status, s.GPULease)
			}
		}
		d.GetJSON(t, "/api/gpu/list", &inv)
		for _, dev := range inv.Items {
			if len(dev.HeldBy) != 1 {
				t.Errorf("after restart GPU %d held by %+v", dev.Index, dev.HeldBy)
			}
		}
		var errBody apiError
		apiPost(t, d, "service/start", tools.ServiceStartInput{ServiceID: a.ID, Wait: true, TimeoutSeconds: 60}, &errBody, 409)
		assertRefusedInSchedule(t, status("a"), nil, "held by service")
	})
}

// TestGPUFitCheck: a model too large for any GPU fails in schedule in
// GiB figures with a suggestion, model_fit says the same without starting,
// force skips the check, and GPU env that contradicts the request is
// refused at create.
func TestGPUFitCheck(t *testing.T) {
	p := newInprocGPUs(t, testenv.TwoGPUs())
	huge := p.addModel(t, bigModel(t))

	var fit services.FitResult
	p.call(t, "model_fit", tools.ModelFitInput{ModelID: huge, Args: []string{"--max-model-len=4096"}}, &fit)
	if fit.Fits || !strings.Contains(fit.Reason, "allows 72.0 GiB") || fit.Estimate.WeightsBytes != 200<<30 || fit.Suggestion == "" || len(fit.FitsOn) != 0 {
		t.Errorf("model_fit of the huge model: %+v", fit)
	}
	p.call(t, "model_fit", tools.ModelFitInput{ModelID: p.modelID}, &fit)
	if !fit.Fits || !slices.Equal(fit.FitsOn, []int{0, 1}) || len(fit.GPUs) != 1 {
		t.Errorf("model_fit of the small model: %+v", fit)
	}

	s := p.createService(t, tools.ServiceCreateInput{ModelID: huge, Args: []string{"--max-model-len=4096"}})
	out, evs, err := p.startWait(t, s.ID, 60)
	if !errs.Is(err, errs.Conflict) {
		t.Fatalf("start of a too-large model: %v (%+v)", err, out.Service)
	}
	assertRefusedInSchedule(t, p.status(t, s.ID), evs, "needs ~", "GiB per GPU", "allows 72.0 GiB", "the most any GPU offers is 72.0 GiB", "use a smaller or quantized model")

	t.Run("force skips the check", func(t *testing.T) {
		var out tools.StartOutput
		if err := p.try(t, "service_start", tools.ServiceStartInput{ServiceID: s.ID, Wait: true, TimeoutSeconds: 120, Force: true}, &out, nil); err != nil {
			t.Fatal(err)
		}
		if out.Service.Status != services.StatusRunning || out.Service.GPULease == nil || !out.Service.GPULease.Forced {
			t.Errorf("forced start: %s %+v", out.Service.Status, out.Service.GPULease)
		}
	})

	t.Run("contradicting GPU env is refused at create", func(t *testing.T) {
		for _, in := range []tools.ServiceCreateInput{
			{ModelID: p.modelID, EngineType: "vllm", Env: []string{"NVIDIA_VISIBLE_DEVICES=1"}},
			{ModelID: p.modelID, EngineType: "vllm", GPUs: "device=0", Env: []string{"CUDA_VISIBLE_DEVICES=1"}},
			{ModelID: p.modelID, EngineType: "vllm", GPUs: "1", Args: []string{"--tensor-parallel-size=2"}},
		} {
			err := p.try(t, "service_create", in, nil, nil)
			if !errs.Is(err, errs.InvalidArgument) {
				t.Errorf("create %+v: %v, want invalid_argument", in, err)
			}
		}
	})
}

// TestGPUConcurrentStartsOneWinner: ten services compete for one free GPU;
// exactly one gets it, nine are refused in schedule.
func TestGPUConcurrentStartsOneWinner(t *testing.T) {
	p := newInprocGPUs(t, fakesmi.Spec{GPUs: []fakesmi.GPU{{MemoryMiB: 81920}}})
	var ids []string
	for i := range 10 {
		ids = append(ids, p.createService(t, tools.ServiceCreateInput{Name: fmt.Sprintf("race-%d", i)}).ID)
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out tools.StartOutput
			_ = p.try(t, "service_start", tools.ServiceStartInput{ServiceID: id}, &out, nil)
		}()
	}
	wg.Wait()
	running, refused := 0, 0
	for _, id := range ids {
		s := p.waitFor(t, id, 2*time.Minute, "done", func(s services.Service) bool { return s.Status.Terminal() && s.Status != services.StatusCreated })
		switch {
		case s.Status == services.StatusRunning && s.GPULease != nil:
			running++
		case s.Status == services.StatusFailed && s.Failure == services.FailureUnschedulable && strings.Contains(s.Reason, "held by service"):
			refused++
			if cs := containerStates(t, id); len(cs) != 0 {
				t.Errorf("refused %s has containers %v", id, cs)
			}
		default:
			t.Errorf("%s ended %s in %s: %s", id, s.Status, s.Phase, s.Reason)
		}
	}
	if running != 1 || refused != 9 {
		t.Errorf("%d running, %d refused; want 1 and 9", running, refused)
	}
}

// TestGPUMemoryFailureReason: an engine that still runs out of memory
// fails with the GPU state read right after the failure and a suggestion.
func TestGPUMemoryFailureReason(t *testing.T) {
	p := newInprocGPUs(t, testenv.TwoGPUs())
	s := p.createService(t, tools.ServiceCreateInput{Env: []string{"SIM_FAIL=oom-load"}})
	_, _, err := p.startWait(t, s.ID, 120)
	if err == nil {
		t.Fatal("start succeeded")
	}
	got := p.status(t, s.ID)
	if got.Failure != services.FailureExited {
		t.Errorf("failure %q, want exited", got.Failure)
	}
	for _, w := range []string{"CUDA out of memory", "GPU state after the failure: GPU ", "80.0/80.0 GiB free", "suggestion: "} {
		if !strings.Contains(got.Reason, w) {
			t.Errorf("reason %q lacks %q", got.Reason, w)
		}
	}
	if got.GPULease != nil {
		t.Errorf("failed service keeps its lease %+v", got.GPULease)
	}
}

// TestGPUBrokenDriver: a hung nvidia-smi makes gpu_list and a start's
// schedule fail as unavailable within the inventory's bound (5 s) while
// the daemon keeps answering; a driver/library mismatch shows in doctor.
func TestGPUBrokenDriver(t *testing.T) {
	p, fake := newInprocFakeSMI(t, testenv.TwoGPUs())
	s := p.createService(t, tools.ServiceCreateInput{})
	fake.Set(t, fakesmi.Spec{Mode: fakesmi.ModeHang})
	var wg sync.WaitGroup
	var listErr error
	var took time.Duration
	wg.Add(2)
	go func() {
		defer wg.Done()
		t0 := time.Now()
		listErr = p.try(t, "gpu_list", struct{}{}, nil, nil)
		took = time.Since(t0)
	}()
	go func() {
		defer wg.Done()
		_, _, _ = p.startWait(t, s.ID, 60)
	}()
	time.Sleep(time.Second)
	if code := httpGetStatus(p.URL + "/health"); code != 200 {
		t.Errorf("health during a hung nvidia-smi: %d", code)
	}
	wg.Wait()
	if !errs.Is(listErr, errs.Unavailable) || !strings.Contains(listErr.Error(), "did not answer within 5s") || took > 15*time.Second {
		t.Errorf("gpu_list with a hung driver: %v after %s", listErr, took)
	}
	got := p.status(t, s.ID)
	if got.Status != services.StatusFailed || got.Phase != services.PhaseSchedule || got.Failure != services.FailureGPUUnavailable || !strings.Contains(got.Reason, "did not answer") {
		t.Errorf("start with a hung driver: %s in %s: %s", got.Status, got.Phase, got.Reason)
	}
	fake.Set(t, fakesmi.Spec{Mode: fakesmi.ModeMismatch})
	var doc tools.DoctorOutput
	p.call(t, "system_doctor", struct{}{}, &doc)
	if !strings.Contains(doc.GPU, "unavailable") || !strings.Contains(doc.GPU, "Driver/library version mismatch") {
		t.Errorf("doctor gpu %q", doc.GPU)
	}
}

// apiError is the HTTP API's error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// apiPost POSTs in to /api/<route> and decodes the body into out, failing
// the test unless the HTTP status is want.
func apiPost(t *testing.T, d *testenv.DaemonProc, route string, in, out any, want int) {
	t.Helper()
	code, body, err := d.Post("/api/"+route, in)
	if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Fatalf("POST /api/%s: %d, want %d: %s", route, code, want, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("POST /api/%s: %v: %s", route, err, body)
		}
	}
}
