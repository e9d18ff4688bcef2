package fakeruntime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"aima/errs"
	"aima/runtime"
	"aima/runtime/runtimetest"
)

const image = "engine:1"

// newFake returns a fake with the test image, closed when the test ends.
func newFake(t *testing.T, opts ...Option) *Runtime {
	t.Helper()
	r := New(append([]Option{WithImages(image)}, opts...)...)
	t.Cleanup(r.Close)
	return r
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// spec is a container spec with a free loopback port published.
func spec(t *testing.T, name string, labels map[string]string) runtime.ContainerSpec {
	return runtime.ContainerSpec{Name: name, Image: image, Labels: labels, ContainerPort: 8000, HostIP: "127.0.0.1", HostPort: 0}
}

func mustCreate(t *testing.T, r *Runtime, s runtime.ContainerSpec) string {
	t.Helper()
	id, err := r.CreateContainer(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustStart(t *testing.T, r *Runtime, id string) runtime.ContainerState {
	t.Helper()
	if err := r.StartContainer(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	st, err := r.InspectContainer(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// get does one GET of the container's published port: its status code, or
// 0 when nothing answers.
func get(port int) int {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/health")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func wantKind(t *testing.T, err error, k errs.Kind) {
	t.Helper()
	if errs.KindOf(err) != k {
		t.Fatalf("error %v: kind %s, want %s", err, errs.KindOf(err), k)
	}
}

// collect reads events until n arrived.
func collect(t *testing.T, evs <-chan runtime.Event, n int) []runtime.Event {
	t.Helper()
	var out []runtime.Event
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("event stream ended after %v", actions(out))
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("only %v arrived", actions(out))
		}
	}
	return out
}

func actions(evs []runtime.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Action
	}
	return out
}

// The engine's port answers 503 until the script says healthy, 200 then,
// and nothing once the process has exited; events say so, with labels.
func TestLifecycleHealthAndEvents(t *testing.T) {
	r := newFake(t)
	gate, exit := make(chan struct{}), make(chan struct{})
	labels := map[string]string{"svc": "a"}
	r.SetScript(labels, Script{Steps: []Step{Log("loading"), Gate(gate), Healthy(), Gate(exit), Stderr("boom"), Exit(3)}})
	evs, _ := r.Events(ctx(t), runtime.EventOptions{Labels: labels})
	other := mustCreate(t, r, spec(t, "other", map[string]string{"svc": "b"}))
	id := mustCreate(t, r, spec(t, "a", labels))
	st := mustStart(t, r, id)
	if !st.Running || st.Status != runtime.StateRunning || st.HostPort == 0 {
		t.Fatalf("after start: %+v", st)
	}
	if code := get(st.HostPort); code != http.StatusServiceUnavailable {
		t.Fatalf("before healthy: %d", code)
	}
	close(gate)
	probe := time.NewTicker(5 * time.Millisecond) // as a readiness probe does
	defer probe.Stop()
	for get(st.HostPort) != http.StatusOK {
		select {
		case <-probe.C:
		case <-ctx(t).Done():
			t.Fatal("never healthy")
		}
	}
	close(exit)
	ex := <-r.WaitExit(ctx(t), id)
	if ex.Err != nil || ex.ExitCode != 3 {
		t.Fatalf("wait: %+v", ex)
	}
	if code := get(st.HostPort); code != 0 {
		t.Errorf("after exit the port answered %d", code)
	}
	got := collect(t, evs, 3)
	if !slices.Equal(actions(got), []string{runtime.ActionCreate, runtime.ActionStart, runtime.ActionDie}) {
		t.Fatalf("events %v", actions(got))
	}
	for _, ev := range got {
		if ev.ContainerID != id || ev.Labels["svc"] != "a" || ev.Labels["name"] != "a" {
			t.Errorf("event %+v: not the labelled container's (other is %s)", ev, other)
		}
	}
	if got[2].ExitCode != 3 || got[2].Labels["exitCode"] != "3" {
		t.Errorf("die event %+v", got[2])
	}
	lines, err := runtimetest.Collect(ctx(t), r, id, runtime.LogOptions{Tail: -1})
	var texts []string
	for _, l := range lines {
		texts = append(texts, l.Stream+":"+l.Text)
	}
	if err != nil || !slices.Equal(texts, []string{"stdout:loading", "stderr:boom"}) {
		t.Fatalf("logs %v, %v", texts, err)
	}
}

// OOM: an oom event before the die, exit 137, OOMKilled in inspect but not
// in the list (Docker's list API does not have it); CreatedAt is coarse in
// the list, exact in inspect.
func TestOOMAndList(t *testing.T) {
	base := time.Date(2026, 1, 1, 10, 0, 0, 500_000_000, time.UTC)
	r := newFake(t, WithClock(func() time.Time { return base }))
	r.SetScript(nil, Script{Steps: []Step{OOM()}})
	evs, _ := r.Events(ctx(t), runtime.EventOptions{})
	id := mustCreate(t, r, spec(t, "x", map[string]string{"k": "v"}))
	mustStart(t, r, id)
	got := collect(t, evs, 4)
	if !slices.Equal(actions(got), []string{"create", "start", "oom", "die"}) || got[3].ExitCode != 137 {
		t.Fatalf("events %v", got)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].Time.After(got[i-1].Time) {
			t.Errorf("event times not increasing: %v", got)
		}
	}
	st, _ := r.InspectContainer(ctx(t), id)
	if !st.OOMKilled || st.ExitCode != 137 || st.Status != runtime.StateExited || !st.CreatedAt.Equal(base) {
		t.Fatalf("inspect %+v", st)
	}
	list, err := r.ListContainers(ctx(t), runtime.ListOptions{Labels: map[string]string{"k": "v"}})
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
	if l := list[0]; l.OOMKilled || l.ExitCode != 137 || !l.CreatedAt.Equal(base.Truncate(time.Second)) || l.Labels["k"] != "v" {
		t.Errorf("list entry %+v", l)
	}
	if list, _ := r.ListContainers(ctx(t), runtime.ListOptions{Labels: map[string]string{"k": "other"}}); len(list) != 0 {
		t.Errorf("label filter let through %v", list)
	}
}

// Logs: tail, since, and follow until the process ends.
func TestLogs(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newFake(t, WithClock(func() time.Time { now = now.Add(time.Second); return now }))
	gate := make(chan struct{})
	r.SetScript(nil, Script{Steps: []Step{Log("1"), Log("2"), Log("3"), Gate(gate), Log("4"), Exit(0)}})
	id := mustCreate(t, r, spec(t, "x", nil))
	mustStart(t, r, id)
	follow, ferrc := runtimetest.LogChan(ctx(t), r, id, runtime.LogOptions{Tail: -1, Follow: true})
	var followed []string
	for len(followed) < 3 {
		followed = append(followed, (<-follow).Text)
	}
	read := func(opts runtime.LogOptions) ([]string, error) {
		lines, err := runtimetest.Collect(ctx(t), r, id, opts)
		var out []string
		for _, l := range lines {
			out = append(out, l.Text)
		}
		return out, err
	}
	cases := []struct {
		opts runtime.LogOptions
		want []string
	}{
		{runtime.LogOptions{Tail: -1}, []string{"1", "2", "3"}},
		{runtime.LogOptions{Tail: 2}, []string{"2", "3"}},
		{runtime.LogOptions{Tail: 0}, nil},
		{runtime.LogOptions{Tail: -1, Since: r.lineTime(id, 1)}, []string{"2", "3"}},
	}
	for _, tc := range cases {
		got, err := read(tc.opts)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v %v, want %v", tc.opts, got, err, tc.want)
		}
	}
	close(gate)
	for l := range follow {
		followed = append(followed, l.Text)
	}
	if err := <-ferrc; err != nil || !slices.Equal(followed, []string{"1", "2", "3", "4"}) {
		t.Errorf("follow: %v %v", followed, err)
	}
	_, err := runtimetest.Collect(ctx(t), r, "nope", runtime.LogOptions{})
	wantKind(t, err, errs.NotFound)
}

func (r *Runtime) lineTime(id string, i int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.containers[id].logs[i].Time
}

// Stop: SIGTERM ends the process with the script's TermExit; a process
// that ignores it is killed after the timeout (137); stopping a stopped or
// never-started container does nothing.
func TestStop(t *testing.T) {
	r := newFake(t)
	r.SetScript(map[string]string{"t": "term"}, Script{Steps: []Step{Healthy()}, TermExit: 143})
	r.SetScript(map[string]string{"t": "ignore"}, Script{IgnoreTerm: true})
	r.SetScript(map[string]string{"t": "slow"}, Script{TermDelay: 20 * time.Millisecond})
	for _, tc := range []struct {
		kind string
		code int
	}{{"term", 143}, {"ignore", 137}, {"slow", 0}} {
		id := mustCreate(t, r, spec(t, tc.kind, map[string]string{"t": tc.kind}))
		mustStart(t, r, id)
		if err := r.StopContainer(ctx(t), id, runtime.StopOptions{Timeout: 50 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		st, _ := r.InspectContainer(ctx(t), id)
		if st.Running || st.ExitCode != tc.code {
			t.Errorf("%s: after stop %+v, want exit %d", tc.kind, st, tc.code)
		}
		if err := r.StopContainer(ctx(t), id, runtime.StopOptions{}); err != nil {
			t.Errorf("second stop: %v", err)
		}
	}
	created := mustCreate(t, r, spec(t, "created", nil))
	if err := r.StopContainer(ctx(t), created, runtime.StopOptions{}); err != nil {
		t.Error(err)
	}
	if ex := <-r.WaitExit(ctx(t), created); ex.Err != nil || ex.ExitCode != 0 {
		t.Errorf("wait on a never-started container: %+v", ex)
	}
	wantKind(t, r.StopContainer(ctx(t), "nope", runtime.StopOptions{}), errs.NotFound)
}

// Remove: a running container only with force (kill, die, destroy), then
// it is gone for every call.
func TestRemove(t *testing.T) {
	r := newFake(t)
	evs, _ := r.Events(ctx(t), runtime.EventOptions{})
	id := mustCreate(t, r, spec(t, "x", nil))
	mustStart(t, r, id)
	wantKind(t, r.RemoveContainer(ctx(t), id, runtime.RemoveOptions{}), errs.Conflict)
	if err := r.RemoveContainer(ctx(t), id, runtime.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := actions(collect(t, evs, 5)); !slices.Equal(got, []string{"create", "start", "kill", "die", "destroy"}) {
		t.Errorf("events %v", got)
	}
	if got := actions(r.Recorded()); !slices.Equal(got, []string{"create", "start", "kill", "die", "destroy"}) {
		t.Errorf("recorded %v", got)
	}
	_, err := r.InspectContainer(ctx(t), id)
	wantKind(t, err, errs.NotFound)
	wantKind(t, (<-r.WaitExit(ctx(t), id)).Err, errs.NotFound)
	wantKind(t, r.RemoveContainer(ctx(t), id, runtime.RemoveOptions{Force: true}), errs.NotFound)
}

// Completes: Docker finishes a create or a remove whose caller gave up.
// The abandoned create's container appears once the fault is cleared; an
// abandoned remove leaves its container killed and in state removing (not
// startable), another remove waits for it and succeeds, and the container
// is gone once the fault is cleared.
func TestAbandonedCallsComplete(t *testing.T) {
	r := newFake(t)
	labels := map[string]string{"svc": "late"}
	r.Inject(OpCreate, Fault{Hang: true, Completes: true})
	gaveUp, cancel := context.WithCancel(ctx(t))
	done := make(chan error, 1)
	go func() {
		_, err := r.CreateContainer(gaveUp, spec(t, "late", labels))
		done <- err
	}()
	if err := r.WaitCalls(ctx(t), OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned create: %v", err)
	}
	if cs := r.Containers(labels); len(cs) != 0 {
		t.Fatalf("created before the fault was cleared: %+v", cs)
	}
	r.Clear(OpCreate)
	c, err := r.WaitFor(ctx(t), labels, func(st runtime.ContainerState) bool { return st.Status == runtime.StateCreated })
	if err != nil {
		t.Fatal(err)
	}

	mustStart(t, r, c.ID)
	r.Inject(OpRemove, Fault{Hang: true, Completes: true, Times: 1})
	gaveUp, cancel = context.WithCancel(ctx(t))
	go func() { done <- r.RemoveContainer(gaveUp, c.ID, runtime.RemoveOptions{Force: true}) }()
	removing, err := r.WaitFor(ctx(t), labels, func(st runtime.ContainerState) bool { return st.Status == runtime.StateRemoving })
	if err != nil || removing.Running || removing.ExitCode != 137 {
		t.Fatalf("while the removal hangs: %+v %v", removing, err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned remove: %v", err)
	}
	wantKind(t, r.StartContainer(ctx(t), c.ID), errs.Conflict)
	go func() { done <- r.RemoveContainer(ctx(t), c.ID, runtime.RemoveOptions{Force: true}) }()
	select {
	case err := <-done:
		t.Fatalf("a second remove returned while the first was in progress: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	r.Clear(OpRemove)
	if err := <-done; err != nil {
		t.Fatalf("the remove that waited for the removal in progress: %v", err)
	}
	if cs := r.Containers(labels); len(cs) != 0 {
		t.Fatalf("after the removal: %+v", cs)
	}
}

// Create needs a local image and a free name; start needs a free port.
func TestCreateAndStartFailures(t *testing.T) {
	r := newFake(t)
	s := spec(t, "x", nil)
	s.Image = "absent:1"
	_, err := r.CreateContainer(ctx(t), s)
	wantKind(t, err, errs.NotFound)
	mustCreate(t, r, spec(t, "dup", nil))
	_, err = r.CreateContainer(ctx(t), spec(t, "dup", nil))
	wantKind(t, err, errs.Conflict)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s = spec(t, "port", nil)
	s.HostPort = held.Addr().(*net.TCPAddr).Port
	id := mustCreate(t, r, s)
	wantKind(t, r.StartContainer(ctx(t), id), errs.Conflict)
	if st, _ := r.InspectContainer(ctx(t), id); st.Status != runtime.StateCreated {
		t.Errorf("after a failed start: %+v", st)
	}
}

// Inject: a fault once, a fault until cleared, a hang released by ctx or
// by Clear; Calls counts every call.
func TestFaults(t *testing.T) {
	r := newFake(t)
	boom := errs.New(errs.Internal, "boom")
	r.Inject(OpCreate, Fault{Err: boom, Times: 1})
	if _, err := r.CreateContainer(ctx(t), spec(t, "a", nil)); !errors.Is(err, boom) {
		t.Fatalf("first create: %v", err)
	}
	mustCreate(t, r, spec(t, "b", nil))
	if n := r.Calls(OpCreate); n != 2 {
		t.Errorf("Calls(create) = %d", n)
	}
	r.Inject(OpList, Fault{Hang: true})
	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := r.ListContainers(short, runtime.ListOptions{})
	wantKind(t, err, errs.DeadlineExceeded)
	done := make(chan error, 1)
	go func() { _, err := r.ListContainers(ctx(t), runtime.ListOptions{}); done <- err }()
	if err := r.WaitCalls(ctx(t), OpList, 2); err != nil {
		t.Fatal(err)
	}
	r.Clear(OpList)
	if err := <-done; err != nil {
		t.Errorf("list after Clear: %v", err)
	}
	r.Inject(OpEvents, Fault{Err: errs.New(errs.Unavailable, "no events")})
	_, errc := r.Events(ctx(t), runtime.EventOptions{})
	wantKind(t, <-errc, errs.Unavailable)
}

// Cut: every call is unavailable, open streams end with it, containers go
// on; after Restore a subscription with Since gets what happened meanwhile.
func TestCutAndRestore(t *testing.T) {
	r := newFake(t)
	r.SetScript(nil, Serve("up"))
	id := mustCreate(t, r, spec(t, "x", nil))
	mustStart(t, r, id)
	evs, errc := r.Events(ctx(t), runtime.EventOptions{})
	wait := r.WaitExit(ctx(t), id)
	lines, lerrc := runtimetest.LogChan(ctx(t), r, id, runtime.LogOptions{Follow: true, Tail: -1})
	r.Cut()
	wantKind(t, r.Ping(ctx(t)), errs.Unavailable)
	_, err := r.InspectContainer(ctx(t), id)
	wantKind(t, err, errs.Unavailable)
	for range evs {
	}
	wantKind(t, <-errc, errs.Unavailable)
	wantKind(t, (<-wait).Err, errs.Unavailable)
	for range lines {
	}
	wantKind(t, <-lerrc, errs.Unavailable)
	before := time.Now()
	if err := r.Kill(id); err != nil {
		t.Fatal(err)
	}
	r.Restore()
	evs, _ = r.Events(ctx(t), runtime.EventOptions{Since: before})
	if got := actions(collect(t, evs, 2)); !slices.Equal(got, []string{"kill", "die"}) {
		t.Errorf("replayed %v", got)
	}
	st, err := r.InspectContainer(ctx(t), id)
	if err != nil || st.Running || st.ExitCode != 137 {
		t.Errorf("after restore: %+v %v", st, err)
	}
}

// Pull: progress in order and the image present after; a scripted failure
// leaves it absent; an image no registry has is NotFound.
func TestPull(t *testing.T) {
	r := newFake(t)
	r.SetPull("new:1", Pull{Progress: []runtime.PullProgress{{Layer: "l1", Status: "Downloading", Current: 1, Total: 2}, {Layer: "l1", Status: "Pull complete"}}})
	r.SetPull("bad:1", Pull{Progress: []runtime.PullProgress{{Status: "Pulling"}}, Err: errs.New(errs.Unavailable, "registry unreachable")})
	var got []string
	if err := r.PullImage(ctx(t), "new:1", runtime.PullOptions{Progress: func(p runtime.PullProgress) { got = append(got, p.Status) }}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.ImageExists(ctx(t), "new:1"); !ok || !slices.Equal(got, []string{"Downloading", "Pull complete"}) {
		t.Errorf("after pull: present %v, progress %v", ok, got)
	}
	wantKind(t, r.PullImage(ctx(t), "bad:1", runtime.PullOptions{}), errs.Unavailable)
	if ok, _ := r.ImageExists(ctx(t), "bad:1"); ok {
		t.Error("a failed pull left the image present")
	}
	wantKind(t, r.PullImage(ctx(t), "nowhere:1", runtime.PullOptions{}), errs.NotFound)
}

// Close ends every stream and process.
func TestClose(t *testing.T) {
	r := New(WithImages(image))
	id := mustCreate(t, r, spec(t, "x", nil))
	st := mustStart(t, r, id)
	evs, errc := r.Events(t.Context(), runtime.EventOptions{})
	r.Close()
	for range evs {
	}
	if err := <-errc; err == nil {
		t.Error("events ended without an error")
	}
	if code := get(st.HostPort); code != 0 {
		t.Errorf("port still answers %d after Close", code)
	}
}

func ExampleRuntime_SetScript() {
	r := New(WithImages("vllm:1"))
	defer r.Close()
	r.SetScript(map[string]string{"aima.service": "svc-1"}, Script{Steps: []Step{
		Log("INFO Loading weights"),
		Sleep(10 * time.Millisecond),
		Stderr("torch.OutOfMemoryError: CUDA out of memory"),
		Exit(1),
	}})
	fmt.Println(len(r.scriptFor(map[string]string{"aima.service": "svc-1", "x": "y"}).Steps))
	// Output: 4
}
