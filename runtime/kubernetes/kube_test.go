package kubernetes_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/errs"
	"aima/internal/testenv/kube"
	"aima/runtime"
	"aima/runtime/kubernetes"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kube.StopShared()
	os.Exit(code)
}

// env is one test's namespace on the shared cluster, with a fake GPU node.
type env struct {
	c  *kube.Cluster
	ns string
}

func newEnv(t testing.TB) env {
	t.Helper()
	c := kube.Shared(t)
	return env{c: c, ns: c.Namespace(t)}
}

// runtime returns a Kubernetes runtime for the test's namespace whose
// Pods tolerate the fake nodes, closed when the test ends.
func (e env) runtime(t testing.TB, store string) *kubernetes.Kube {
	t.Helper()
	k, err := kubernetes.New(kubernetes.Options{
		Kubeconfig: e.c.Kubeconfig,
		Namespace:  e.ns,
		Tolerations: []kubernetes.Toleration{{
			Key: kube.FakeNodeToleration.Key, Operator: "Equal", Value: "fake", Effect: "NoSchedule",
		}},
		StoreID: store,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// node adds a fake GPU node named after the test's namespace.
func (e env) node(t *testing.T, gpus int) string {
	t.Helper()
	name := e.ns + "-n" + strconv.Itoa(gpus)
	e.c.AddGPUNode(t, kube.GPUNode{Name: name, GPUs: gpus, Product: "NVIDIA-H100-80GB-HBM3", MemMiB: 81559})
	return name
}

func spec(service, store string, run int) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:  fmt.Sprintf("aima-%s-r%d", service, run),
		Image: "aima-enginesim:test",
		Args:  []string{"--model", "/models/m"},
		Env:   []string{"SIM_TIME_SCALE=0.05", "NVIDIA_VISIBLE_DEVICES=GPU-1,GPU-2"},
		Labels: map[string]string{
			runtime.LabelManaged: "true", runtime.LabelService: service, runtime.LabelRun: strconv.Itoa(run),
			runtime.LabelStore: store, runtime.LabelEngine: "vllm", runtime.LabelModel: "org/name",
		},
		ContainerPort: 8000,
		HostPort:      freePort(),
		GPUs:          runtime.GPURequest{DeviceIDs: []string{"GPU-1", "GPU-2"}},
		ShmSize:       1 << 30,
		Mounts:        []runtime.Mount{{Source: "/srv/models/m", Target: "/models/m", ReadOnly: true}},
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// expect reads events until one matches, failing the test at ctx's end.
func expect(t *testing.T, ctx context.Context, evs <-chan runtime.Event, what string, match func(runtime.Event) bool) runtime.Event {
	t.Helper()
	var seen []string
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("event stream ended waiting for %s; saw %v", what, seen)
			}
			seen = append(seen, ev.Action+"/"+string(ev.Step)+"/"+string(ev.Reason))
			if match(ev) {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no %s event: %v; saw %v", what, ctx.Err(), seen)
		}
	}
}

func TestPodLifecycle(t *testing.T) {
	e := newEnv(t)
	node := e.node(t, 8)
	k := e.runtime(t, "store-a")
	ctx := ctxFor(t, 2*time.Minute)
	evs, _ := k.Events(ctx, runtime.EventOptions{Labels: map[string]string{runtime.LabelService: "svc1"}})
	sp := spec("svc1", "store-a", 1)
	id, err := k.CreateContainer(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, evs, "create", func(ev runtime.Event) bool { return ev.Action == runtime.ActionCreate && ev.ContainerID == id })
	st, err := k.InspectContainer(ctx, id)
	if err != nil || st.Status != runtime.StateCreated || st.Running {
		t.Fatalf("after create: %+v, %v; want created", st, err)
	}
	pod, err := e.c.Client.CoreV1().Pods(e.ns).Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.NodeName != "" || len(pod.Spec.SchedulingGates) != 1 {
		t.Fatalf("a created pod is held back from the scheduler: node %q, gates %v", pod.Spec.NodeName, pod.Spec.SchedulingGates)
	}
	checkPodSpec(t, pod)

	if err := k.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err = k.InspectContainer(ctx, id)
	if err != nil || st.Status != runtime.StateRunning || !st.Running || st.HostPort != sp.HostPort {
		t.Fatalf("after start: %+v, %v; want running on host port %d", st, err, sp.HostPort)
	}
	sched := expect(t, ctx, evs, "scheduled", func(ev runtime.Event) bool {
		return ev.Action == runtime.ActionProgress && ev.Step == runtime.StepScheduled
	})
	if !strings.Contains(sched.Message, node) {
		t.Errorf("scheduled message %q does not name node %s", sched.Message, node)
	}
	expect(t, ctx, evs, "start", func(ev runtime.Event) bool { return ev.Action == runtime.ActionStart && ev.ContainerID == id })

	list, err := k.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelService: "svc1", runtime.LabelModel: "org/name"}})
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Labels[runtime.LabelModel] != "org/name" {
		t.Fatalf("list by service and model: %+v, %v", list, err)
	}
	// The engine's port is published on the daemon's host while it runs.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sp.HostPort))
	waitDial(t, ctx, addr, true)

	// Stop ends the engine and keeps its Pod, like a stopped container:
	// past the deadline it set, the kubelet (here kwok's stage) ends it.
	if err := k.StopContainer(ctx, id, runtime.StopOptions{Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	st, err = k.InspectContainer(ctx, id)
	if err != nil || st.Running || st.Status != runtime.StateExited {
		t.Fatalf("after stop: %+v, %v; want the pod kept, exited", st, err)
	}
	expect(t, ctx, evs, "die", func(ev runtime.Event) bool { return ev.Action == runtime.ActionDie && ev.ContainerID == id })
	waitDial(t, ctx, addr, false)
	// Removing it is a destroy of aima's own doing.
	if err := k.RemoveContainer(ctx, id, runtime.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.InspectContainer(ctx, id); !errs.Is(err, errs.NotFound) {
		t.Fatalf("after remove: %v; want the pod gone (not_found)", err)
	}
	d := expect(t, ctx, evs, "destroy", func(ev runtime.Event) bool { return ev.Action == runtime.ActionDestroy })
	if d.Reason != "" {
		t.Errorf("aima's own removal reported as %q", d.Reason)
	}
}

// checkPodSpec checks the mapping of a container spec onto a Pod.
func checkPodSpec(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if c := pod.Spec.Containers[0]; c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("terminationMessagePolicy %q; want the engine's last lines on a failure", c.TerminationMessagePolicy)
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q; want Never", pod.Spec.RestartPolicy)
	}
	for _, l := range []string{runtime.LabelManaged, runtime.LabelService, runtime.LabelRun, runtime.LabelStore, runtime.LabelEngine} {
		if pod.Labels[l] == "" {
			t.Errorf("label %s missing: %v", l, pod.Labels)
		}
	}
	c := pod.Spec.Containers[0]
	if q := c.Resources.Limits[kubernetes.ResourceGPU]; q.Value() != 2 {
		t.Errorf("gpu limit %v; want 2", q.String())
	}
	for _, env := range c.Env {
		if env.Name == "NVIDIA_VISIBLE_DEVICES" {
			t.Errorf("NVIDIA_VISIBLE_DEVICES passed on; the device plugin sets it on the node")
		}
	}
	if strings.Join(c.Args, " ") != "--model /models/m" {
		t.Errorf("args %v", c.Args)
	}
	tolerates := false
	for _, tol := range pod.Spec.Tolerations {
		tolerates = tolerates || tol.Key == "nvidia.com/gpu"
	}
	if !tolerates {
		t.Errorf("no nvidia.com/gpu toleration: %v", pod.Spec.Tolerations)
	}
	var shm, model bool
	for _, v := range pod.Spec.Volumes {
		shm = shm || (v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory && v.EmptyDir.SizeLimit.Value() == 1<<30)
		model = model || (v.HostPath != nil && v.HostPath.Path == "/srv/models/m")
	}
	if !shm || !model {
		t.Errorf("volumes %+v; want a 1 GiB memory /dev/shm and the model's hostPath", pod.Spec.Volumes)
	}
}

// waitDial waits until addr accepts connections (up) or refuses them.
func waitDial(t *testing.T, ctx context.Context, addr string, up bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		if (err == nil) == up {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: accepting=%v never became %v", addr, err == nil, up)
		case <-tick.C:
		}
	}
}

func TestUnschedulableShowsTheSchedulersMessage(t *testing.T) {
	e := newEnv(t)
	e.node(t, 8)
	k := e.runtime(t, "store-a")
	ctx := ctxFor(t, 2*time.Minute)
	evs, _ := k.Events(ctx, runtime.EventOptions{Labels: map[string]string{runtime.LabelService: "big"}})
	sp := spec("big", "store-a", 1)
	sp.GPUs = runtime.GPURequest{Count: 16}
	id, err := k.CreateContainer(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	startCtx, stopStart := context.WithCancel(ctx)
	started := make(chan error, 1)
	go func() { started <- k.StartContainer(startCtx, id) }()
	ev := expect(t, ctx, evs, "unschedulable", func(ev runtime.Event) bool {
		return ev.Action == runtime.ActionProgress && ev.Step == runtime.StepUnschedulable
	})
	if !strings.Contains(ev.Message, "Insufficient nvidia.com/gpu") {
		t.Errorf("unschedulable message %q; want the scheduler's (Insufficient nvidia.com/gpu)", ev.Message)
	}
	stopStart()
	err = <-started
	if err == nil || !strings.Contains(err.Error(), "Insufficient nvidia.com/gpu") {
		t.Errorf("start cut while unschedulable: %v; want ctx's error with the scheduler's message", err)
	}
	st, err := k.InspectContainer(ctx, id)
	if err != nil || st.Running || st.Status != runtime.StateCreated {
		t.Errorf("unschedulable pod: %+v, %v; want created, not running", st, err)
	}
}

func TestImagePullFailureFailsTheStart(t *testing.T) {
	e := newEnv(t)
	e.node(t, 8)
	k := e.runtime(t, "store-a")
	ctx := ctxFor(t, 2*time.Minute)
	evs, _ := k.Events(ctx, runtime.EventOptions{Labels: map[string]string{runtime.LabelService: "nopull"}})
	sp := spec("nopull", "store-a", 1)
	sp.Image = kube.ImageUnpullable
	id, err := k.CreateContainer(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	err = k.StartContainer(ctx, id)
	if !errs.Is(err, errs.NotFound) || !strings.Contains(err.Error(), "ErrImagePull") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("start with an unpullable image: %v; want not_found with the kubelet's ErrImagePull message", err)
	}
	expect(t, ctx, evs, "pull_failed", func(ev runtime.Event) bool {
		return ev.Action == runtime.ActionProgress && ev.Step == runtime.StepPullFailed && strings.Contains(ev.Message, "ErrImagePull")
	})
	st, err := k.InspectContainer(ctx, id)
	if err != nil || st.Reason != runtime.ReasonPullError {
		t.Errorf("inspect: %+v, %v; want reason pull_error", st, err)
	}
}

// running creates and starts a Pod of service on the fake node.
func running(t *testing.T, ctx context.Context, k *kubernetes.Kube, service string) string {
	t.Helper()
	id, err := k.CreateContainer(ctx, spec(service, "store-a", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestOOMKilledIsATypedEnd(t *testing.T) {
	e := newEnv(t)
	e.node(t, 8)
	k := e.runtime(t, "store-a")
	ctx := ctxFor(t, 2*time.Minute)
	evs, _ := k.Events(ctx, runtime.EventOptions{Labels: map[string]string{runtime.LabelService: "oom"}})
	id := running(t, ctx, k, "oom")
	exited := k.WaitExit(ctx, id)
	// What the kubelet writes when the kernel kills the engine for memory.
	pod, err := e.c.Client.CoreV1().Pods(e.ns).Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	pod.Status.Phase = corev1.PodFailed
	pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 137, Reason: "OOMKilled", StartedAt: now, FinishedAt: now,
	}}
	pod.Status.ContainerStatuses[0].Ready = false
	if _, err := e.c.Client.CoreV1().Pods(e.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ex := <-exited
	if ex.Err != nil || ex.ExitCode != 137 || ex.Reason != runtime.ReasonOOMKilled {
		t.Fatalf("wait: %+v; want exit 137, reason oom_killed", ex)
	}
	expect(t, ctx, evs, "oom", func(ev runtime.Event) bool { return ev.Action == runtime.ActionOOM })
	die := expect(t, ctx, evs, "die", func(ev runtime.Event) bool { return ev.Action == runtime.ActionDie })
	if die.ExitCode != 137 || die.Reason != runtime.ReasonOOMKilled {
		t.Errorf("die event %+v; want 137 oom_killed", die)
	}
	st, err := k.InspectContainer(ctx, id)
	if err != nil || !st.OOMKilled || st.Status != runtime.StateExited || st.ExitCode != 137 {
		t.Errorf("inspect: %+v, %v", st, err)
	}
	// An ended Pod is kept by stop, like an exited container, for its log.
	if err := k.StopContainer(ctx, id, runtime.StopOptions{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.InspectContainer(ctx, id); err != nil {
		t.Errorf("stop removed an ended pod: %v", err)
	}
}

func TestPodDeletedBehindAimasBack(t *testing.T) {
	e := newEnv(t)
	e.node(t, 8)
	k := e.runtime(t, "store-a")
	ctx := ctxFor(t, 2*time.Minute)
	evs, _ := k.Events(ctx, runtime.EventOptions{Labels: map[string]string{runtime.LabelService: "gone"}})
	id := running(t, ctx, k, "gone")
	exited := k.WaitExit(ctx, id)
	if err := e.c.Client.CoreV1().Pods(e.ns).Delete(ctx, id, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	ex := <-exited
	if !errs.Is(ex.Err, errs.NotFound) || ex.Reason != runtime.ReasonDeleted {
		t.Fatalf("wait: %+v; want not_found with reason deleted", ex)
	}
	d := expect(t, ctx, evs, "destroy", func(ev runtime.Event) bool { return ev.Action == runtime.ActionDestroy })
	if d.Reason != runtime.ReasonDeleted {
		t.Errorf("destroy event reason %q; want deleted", d.Reason)
	}
}

func TestAdoptByLabelAfterRestartAndLeaveOtherStores(t *testing.T) {
	e := newEnv(t)
	e.node(t, 8)
	ctx := ctxFor(t, 2*time.Minute)
	first := e.runtime(t, "store-a")
	id := running(t, ctx, first, "kept")
	other := e.runtime(t, "store-b")
	otherSpec := spec("theirs", "store-b", 1)
	otherID, err := other.CreateContainer(ctx, otherSpec)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.StartContainer(ctx, otherID); err != nil {
		t.Fatal(err)
	}
	_ = other.Close() // its daemon went away; its Pod runs on

	_ = first.Close() // the daemon restarts
	k := e.runtime(t, "store-a")
	list, err := k.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelManaged: "true", runtime.LabelStore: "store-a"}})
	if err != nil || len(list) != 1 || list[0].ID != id || !list[0].Running {
		t.Fatalf("after restart, this store's pods: %+v, %v; want %s running", list, err, id)
	}
	all, err := k.ListContainers(ctx, runtime.ListOptions{Labels: map[string]string{runtime.LabelManaged: "true"}})
	if err != nil || len(all) != 2 {
		t.Fatalf("all aima pods: %+v, %v; want 2", all, err)
	}
	// The adopted Pod's port is published again; the other store's is not.
	waitDial(t, ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(list[0].HostPort)), true)
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(otherSpec.HostPort)), time.Second); err == nil {
		c.Close()
		t.Errorf("another store's pod's port %d is published", otherSpec.HostPort)
	}
	if err := k.StopContainer(ctx, id, runtime.StopOptions{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.InspectContainer(ctx, otherID); err != nil {
		t.Errorf("another store's pod was touched: %v", err)
	}
}

func TestDiagnoseReportsTheClusterAndMissingPermissions(t *testing.T) {
	e := newEnv(t)
	ctx := ctxFor(t, time.Minute)
	r := e.runtime(t, "store-a").Diagnose(ctx)
	if !r.Reachable || !strings.HasPrefix(r.Version, "v1.") || r.Namespace != e.ns || len(r.Missing) != 0 || r.Endpoint != kubernetes.EndpointProxy {
		t.Errorf("admin: %+v; want reachable, a version, the namespace, nothing missing, proxy", r)
	}
	// A user RBAC grants nothing.
	r = e.limited(t).Diagnose(ctx)
	if !r.Reachable || !slices.Contains(r.Missing, "create pods") || !slices.Contains(r.Missing, "get pods/log") || !slices.Contains(r.Missing, "get pods/proxy") ||
		!slices.Contains(r.Missing, "list nodes") || !slices.Contains(r.Missing, "watch pods (all namespaces)") {
		t.Errorf("nobody: %+v; want reachable with create pods, get pods/log, get pods/proxy, list nodes and watch pods (all namespaces) missing", r)
	}
	// An API server that is not there.
	path := t.TempDir() + "/kubeconfig"
	if err := os.WriteFile(path, []byte(kube.Kubeconfig("https://127.0.0.1:"+strconv.Itoa(freePort()), kube.Token)), 0o600); err != nil {
		t.Fatal(err)
	}
	k2, err := kubernetes.New(kubernetes.Options{Kubeconfig: path})
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close()
	if err := k2.Ping(ctx); !errs.Is(err, errs.Unavailable) {
		t.Errorf("ping of no API server: %v; want unavailable", err)
	}
	if r := k2.Diagnose(ctx); r.Reachable || r.Error == "" {
		t.Errorf("no API server: %+v; want unreachable with the error", r)
	}
}

func TestLogsFromPodsLog(t *testing.T) {
	e := newEnv(t)
	e.node(t, 8)
	k := e.runtime(t, "store-a")
	ctx := ctxFor(t, time.Minute)
	// Nothing to read before the engine ran.
	id, err := k.CreateContainer(ctx, spec("logs", "store-a", 1))
	if err != nil {
		t.Fatal(err)
	}
	var lines []runtime.LogLine
	each := func(l runtime.LogLine) error { lines = append(lines, l); return nil }
	if err := k.Logs(ctx, id, runtime.LogOptions{Tail: -1}, each); err != nil || len(lines) != 0 {
		t.Fatalf("logs of a pod not started: %v, %v; want an empty log", lines, err)
	}
	if err := k.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := kube.WriteCRILog(e.c.EngineLog(), t0, "INFO loading weights", "ERROR CUDA out of memory", "INFO serving on :8000"); err != nil {
		t.Fatal(err)
	}
	if err := k.Logs(ctx, id, runtime.LogOptions{Tail: -1}, each); err != nil {
		t.Fatalf("logs: %v", err)
	}
	if len(lines) != 3 || lines[1].Text != "ERROR CUDA out of memory" || !lines[0].Time.Equal(t0) || lines[2].Stream != "stdout" {
		t.Fatalf("logs: %+v; want the three lines with the kubelet's times", lines)
	}
	lines = nil
	if err := k.Logs(ctx, id, runtime.LogOptions{Tail: 1, NoTimes: true}, each); err != nil || len(lines) != 1 || lines[0].Text != "INFO serving on :8000" {
		t.Fatalf("tail 1: %+v, %v", lines, err)
	}
	stop := errors.New("enough")
	if err := k.Logs(ctx, id, runtime.LogOptions{Tail: -1}, func(runtime.LogLine) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("each's error: %v; want it back unchanged", err)
	}
}

func TestEvictedIsATypedEnd(t *testing.T) {
	e := newEnv(t)
	e.node(t, 8)
	k := e.runtime(t, "store-a")
	ctx := ctxFor(t, time.Minute)
	id := running(t, ctx, k, "evicted")
	exited := k.WaitExit(ctx, id)
	// What the kubelet writes when it evicts a Pod under memory pressure.
	pod, err := e.c.Client.CoreV1().Pods(e.ns).Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase, pod.Status.Reason = corev1.PodFailed, "Evicted"
	pod.Status.Message = "The node was low on resource: memory."
	if _, err := e.c.Client.CoreV1().Pods(e.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ex := <-exited
	if ex.Err != nil || ex.Reason != runtime.ReasonEvicted || !strings.Contains(ex.Message, "low on resource") {
		t.Fatalf("wait: %+v; want reason evicted with the kubelet's message", ex)
	}
	st, err := k.InspectContainer(ctx, id)
	if err != nil || st.Running || st.Reason != runtime.ReasonEvicted {
		t.Errorf("inspect: %+v, %v", st, err)
	}
}
