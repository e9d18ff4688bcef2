package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
	"aima/runtime"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kube.StopShared()
	os.Exit(code)
}

// env is two daemon replicas (real `aima start` processes) sharing one
// store in a namespace of the test cluster, engines running as Pods on a
// fake node.
type env struct {
	c    *kube.Cluster
	ns   string
	a, b *testenv.DaemonProc
}

func newEnv(t testing.TB) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv; with engine not nil, the fake node's Pods get
// loopback addresses, the daemons reach engines at the Pod's IP and
// engine answers there for every running Pod (kube.ServeEngines), so
// starts reach running.
func newEnvWith(t testing.TB, engine http.Handler) *env {
	t.Helper()
	return buildEnv(t, kube.Shared(t), envOptions{engine: engine})
}

// newEnvOn is newEnv on cluster c, with lease (YAML lines under
// cluster.leader_election) added to the replicas' config.
func newEnvOn(t testing.TB, c *kube.Cluster, lease string) *env {
	t.Helper()
	return buildEnv(t, c, envOptions{lease: lease})
}

// envOptions vary the replicas of buildEnv: lease adds YAML lines under
// cluster.leader_election; engine, when not nil, answers for the engines
// (see newEnvWith); kubeconfig, when set, is the replicas' way to the API
// server instead of the cluster's own (a kube.RequestCounter's).
type envOptions struct {
	lease      string
	engine     http.Handler
	kubeconfig string
}

func buildEnv(t testing.TB, c *kube.Cluster, o envOptions) *env {
	t.Helper()
	lease, engine, kubeconfig := o.lease, o.engine, o.kubeconfig
	if kubeconfig == "" {
		kubeconfig = c.Kubeconfig
	}
	c.InstallCRDs(t)
	ns := c.Namespace(t)
	node := kube.GPUNode{Name: ns + "-n", GPUs: 8, Product: "NVIDIA-H100-80GB-HBM3", MemMiB: 81559}
	endpoint := ""
	if engine != nil {
		node.PodCIDR = kube.EnginePodNet(podNetBase)
		endpoint = "  endpoint: pod_ip\n"
	}
	c.AddGPUNode(t, node)
	if engine != nil {
		c.ServeEngines(t, ns, 20*time.Millisecond, engine)
	}
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{
		Image: "aima-enginesim:test",
		Extra: fmt.Sprintf("runtime: kubernetes\nstore: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n%s"+
			"  tolerations: [{key: %s, operator: Equal, value: fake, effect: NoSchedule}]\n"+
			"cluster:\n  leader_election:\n    enabled: true\n%s", kubeconfig, ns, endpoint, kube.FakeNodeAnnotation, lease),
	})
	bin := testenv.BuildAima(t)
	e := &env{c: c, ns: ns}
	e.a = testenv.StartDaemon(t, testenv.DaemonOptions{Config: cfg, Bin: bin})
	waitReady(t, e.a)
	e.b = testenv.StartDaemon(t, testenv.DaemonOptions{Config: cfg, Bin: bin})
	return e
}

// ready reports whether d answers /readyz with 200.
func ready(d *testenv.DaemonProc) bool {
	code, _, err := d.Get("/readyz")
	return err == nil && code == http.StatusOK
}

// waitReady waits until d leads and returns when it first answered ready.
func waitReady(t testing.TB, d *testenv.DaemonProc) time.Time {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ready(d) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never became ready\n%s", d.Addr, d.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Now()
}

func post(t testing.TB, d *testenv.DaemonProc, path string, in any) map[string]any {
	t.Helper()
	code, body, err := d.Post(path, in)
	if err != nil || code != http.StatusOK {
		t.Fatalf("POST %s: %d %s %v", path, code, body, err)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// startServices creates and starts n services on the leader d (starts
// that stay in health_check: kwok runs no engine) and waits until each
// has its Pod; it returns the service IDs.
func (e *env) startServices(t testing.TB, d *testenv.DaemonProc, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		out := post(t, d, "/api/service/create", map[string]any{"model_id": "org/name", "engine_type": "vllm"})
		id := out["id"].(string)
		post(t, d, "/api/service/start", map[string]any{"service_id": id, "timeout_seconds": 900})
		ids = append(ids, id)
	}
	for _, id := range ids {
		e.waitPods(t, id, 1)
	}
	return ids
}

// pods lists the engine Pods of service id.
func (e *env) pods(t testing.TB, id string) []corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := e.c.Client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: runtime.LabelService + "=" + id})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func (e *env) waitPods(t testing.TB, id string, n int) []corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ps := e.pods(t, id)
		if len(ps) == n {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s has %d Pods, want %d", id, len(ps), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// services returns the service records d serves, by ID: status.
func services(t testing.TB, d *testenv.DaemonProc) map[string]string {
	t.Helper()
	code, body, err := d.Get("/api/service/list")
	if err != nil || code != http.StatusOK {
		t.Fatalf("service list: %d %s %v", code, body, err)
	}
	var out struct {
		Items []struct{ ID, Status string }
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, s := range out.Items {
		m[s.ID] = s.Status
	}
	return m
}

// waitStopped waits until service id's one Pod has ended and is kept (a
// stop ends the engine and keeps its Pod, like a stopped container).
func (e *env) waitStopped(t testing.TB, id string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ps := e.pods(t, id)
		if len(ps) == 1 && ended(ps[0]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: Pods %d, want its one Pod ended", id, len(ps))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ended reports whether a Pod has ended (Failed or Succeeded).
func ended(p corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

func uids(ps []corev1.Pod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p.UID))
	}
	slices.Sort(out)
	return out
}

// The leader is killed outright: the other replica leads within the
// lease, with every record, and adopts the engine Pods (none started
// again, none left behind).
func TestLeaderKilledTheOtherTakesOver(t *testing.T) {
	e := newEnv(t)
	if ready(e.b) {
		t.Fatal("both replicas are ready")
	}
	// A follower refuses the API, naming the leader.
	code, body, _ := e.b.Get("/api/service/list")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "follower") {
		t.Fatalf("follower answered %d %s", code, body)
	}
	ids := e.startServices(t, e.a, 3)
	before := services(t, e.a)
	podsBefore := map[string][]string{}
	for _, id := range ids {
		podsBefore[id] = uids(e.pods(t, id))
	}

	e.a.Kill(t)
	killed := time.Now()
	took := waitReady(t, e.b).Sub(killed)
	t.Logf("takeover: %s from SIGKILL of the leader to the other replica ready (lease 8s, retry 1s)", took.Round(time.Millisecond))

	after := services(t, e.b)
	for id := range before {
		if _, ok := after[id]; !ok {
			t.Errorf("service %s lost in the takeover", id)
		}
	}
	// Give the new leader's reconcile and watches time to act on every
	// Pod, then check that each service still has its one Pod.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, id := range ids {
			if got := uids(e.pods(t, id)); !slices.Equal(got, podsBefore[id]) {
				t.Fatalf("service %s: Pods %v after the takeover, want %v (adopted, not started again)", id, got, podsBefore[id])
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The new leader acts on the adopted Pods: stopping one ends it.
	post(t, e.b, "/api/service/stop", map[string]any{"service_id": ids[0]})
	e.waitStopped(t, ids[0])
}

// A leader paused past its lease (SIGSTOP) and resumed writes nothing:
// meanwhile the other replica led and stopped a service, and the old
// leader, which still believed the service was starting, neither brings
// its Pod back nor overwrites its record; it exits to start again as a
// follower.
func TestPausedLeaderIsFenced(t *testing.T) {
	e := newEnv(t)
	ids := e.startServices(t, e.a, 2)
	if err := syscall.Kill(e.a.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := true
	t.Cleanup(func() {
		if paused {
			_ = syscall.Kill(e.a.PID(), syscall.SIGCONT)
		}
	})
	waitReady(t, e.b)
	for _, id := range ids {
		post(t, e.b, "/api/service/stop", map[string]any{"service_id": id})
		e.waitStopped(t, id)
	}
	if err := syscall.Kill(e.a.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	paused = false
	select {
	case <-e.a.Exited():
	case <-time.After(time.Minute):
		t.Fatalf("the resumed old leader still runs\n%s", e.a.Logs())
	}
	if !strings.Contains(e.a.Logs(), "lost its leader lease") {
		t.Errorf("the old leader did not say it lost its lease:\n%s", e.a.Logs())
	}
	t.Logf("writes the old leader attempted and its fence refused: %d", strings.Count(e.a.Logs(), "writes nothing"))
	for _, l := range strings.Split(e.a.Logs(), "\n") {
		if strings.Contains(l, "writes nothing") {
			t.Log(l)
		}
	}
	// Its watches saw the Pods end; had it acted, a Pod would be started
	// again or a record changed. Look for a while.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		st := services(t, e.b)
		for _, id := range ids {
			if ps := e.pods(t, id); len(ps) != 1 || !ended(ps[0]) {
				t.Fatalf("service %s has %d Pods after the old leader resumed, want its one stopped Pod", id, len(ps))
			}
			if st[id] != "stopped" {
				t.Fatalf("service %s is %q after the old leader resumed, want stopped", id, st[id])
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !ready(e.b) {
		t.Fatal("the new leader is no longer ready")
	}
}
