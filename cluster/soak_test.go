package cluster_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
)

// podNetBase is this package's loopback range for the fake node's Pods
// (kube.EnginePodNet).
const podNetBase = 78

// loadingEngine is the stand-in engine of the soak: while loading is on,
// an engine at an address not yet marked ready answers its health check
// 503 (still loading), so a start waits in health_check; the engines that
// ran before keep answering 200.
type loadingEngine struct {
	loading atomic.Bool
	ready   sync.Map // Pod IP → true
}

func (l *loadingEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l.loading.Load() {
		addr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		host, _, _ := net.SplitHostPort(addrString(addr))
		if _, ok := l.ready.Load(host); !ok {
			http.Error(w, "loading", http.StatusServiceUnavailable)
			return
		}
	}
	kube.StandInEngine.ServeHTTP(w, r)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// hold makes engines started from now on load until release; the running
// Pods' engines stay ready.
func (l *loadingEngine) hold(t *testing.T, e *env) {
	t.Helper()
	for _, p := range e.allPods(t) {
		if p.Status.PodIP != "" {
			l.ready.Store(p.Status.PodIP, true)
		}
	}
	l.loading.Store(true)
}

func (l *loadingEngine) release() { l.loading.Store(false) }

// allPods lists every engine Pod of the namespace.
func (e *env) allPods(t *testing.T) []corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := e.c.Client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// The leader is killed with SIGKILL in the middle of a start (its engine
// still loading) and, once that start ran, while its services are idle;
// the killed replica comes back as the follower, and this repeats
// soakReps times (`make soak`: 10). Each time the other replica leads
// within the lease and: no record is lost, every service keeps its one
// Pod (adopted, never started twice, none left over), the start in flight
// resumes under the new leader and reaches running, and the idle services
// stay running. The takeover times are logged with their median and worst
// (docs/performance.md).
func TestLeaderKilledMidStartAndWhileIdle(t *testing.T) {
	reps := testenv.SoakReps(t)
	engine := &loadingEngine{}
	e := newEnvWith(t, engine)
	leader, follower := e.a, e.b
	// The leader places on the cluster's GPUs (its fenced runtime keeps
	// the node lister): gpu list shows the node's 8.
	var gpus struct {
		Items []struct {
			Node string `json:"node"`
		} `json:"items"`
	}
	code, body, err := leader.Post("/api/gpu/list", struct{}{})
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &gpus) != nil || len(gpus.Items) != 8 || gpus.Items[0].Node != e.ns+"-n" {
		t.Fatalf("gpu list on the leader: %d %v %s; want the node's 8 GPUs", code, err, body)
	}
	var takeovers []time.Duration
	var ids []string
	// takeover kills the leader, checks what the follower leads with, and
	// brings the killed one back as the follower.
	takeover := func(what string, want map[string]string, wantPods map[string][]string) {
		t.Helper()
		leader.Kill(t)
		killed := time.Now()
		took := waitReady(t, follower).Sub(killed)
		takeovers = append(takeovers, took)
		t.Logf("takeover %d (%s): %s", len(takeovers), what, took.Round(time.Millisecond))
		got := services(t, follower)
		for id := range want {
			if _, ok := got[id]; !ok {
				t.Fatalf("%s: service %s lost in the takeover", what, id)
			}
		}
		for id, uids0 := range wantPods {
			if got := uids(e.pods(t, id)); !slices.Equal(got, uids0) {
				t.Fatalf("%s: service %s has Pods %v after the takeover, want %v (adopted, not started again)", what, id, got, uids0)
			}
		}
		leader.Restart(t)
		leader, follower = follower, leader
	}
	podsOf := func(ids []string) map[string][]string {
		out := map[string][]string{}
		for _, id := range ids {
			out[id] = uids(e.pods(t, id))
		}
		return out
	}
	for rep := 1; rep <= reps; rep++ {
		// In the middle of a start: its Pod runs, its engine loads.
		engine.hold(t, e)
		out := post(t, leader, "/api/service/create", map[string]any{"model_id": "org/name", "engine_type": "vllm"})
		id := out["id"].(string)
		// A client follows the start (`start --wait`) on the leader.
		started := make(chan testenv.Result, 1)
		go func(d *testenv.DaemonProc) {
			started <- d.RunCLI("service", "start", id, "--wait", "--timeout", "900")
		}(leader)
		e.waitRunningPod(t, id)
		if st := services(t, leader)[id]; st != "creating" {
			t.Fatalf("rep %d: the held start is %q, want creating", rep, st)
		}
		ids = append(ids, id)
		takeover("mid-start", services(t, leader), podsOf(ids))
		// Its stream ended with a clear error that says how to follow the
		// start again; following it on the new leader sees it through.
		select {
		case r := <-started:
			if r.Code == 0 || !strings.Contains(r.Stderr, "aima service wait "+id) {
				t.Errorf("rep %d: start --wait when its daemon was killed: exit %d\n%s", rep, r.Code, r.Stderr)
			}
		case <-time.After(time.Minute):
			t.Fatalf("rep %d: start --wait still runs a minute after its daemon was killed", rep)
		}
		engine.release()
		if r := leader.RunCLI("service", "wait", id, "--for", "running"); r.Code != 0 {
			t.Fatalf("rep %d: service wait on the new leader: exit %d\n%s", rep, r.Code, r.Stderr)
		}
		waitStatus(t, leader, id, "running")
		if got := podsOf(ids); len(got[id]) != 1 {
			t.Fatalf("rep %d: the resumed start has Pods %v, want its one Pod", rep, got[id])
		}

		// Idle: every service runs, nothing in flight.
		before := services(t, leader)
		for _, id := range ids {
			if before[id] != "running" {
				t.Fatalf("rep %d: service %s is %q before the idle takeover, want running", rep, id, before[id])
			}
		}
		takeover("idle", before, podsOf(ids))
		for _, id := range ids {
			waitStatus(t, leader, id, "running")
		}
	}
	slices.Sort(takeovers)
	t.Logf("takeovers: %d, median %s, worst %s (lease 8s, retry 1s)", len(takeovers),
		testenv.Median(takeovers).Round(time.Millisecond), takeovers[len(takeovers)-1].Round(time.Millisecond))
}

// waitRunningPod waits until service id has one Pod and it runs.
func (e *env) waitRunningPod(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ps := e.pods(t, id)
		if len(ps) == 1 && ps[0].Status.Phase == corev1.PodRunning && ps[0].Status.PodIP != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: no running Pod (%d Pods)", id, len(ps))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
