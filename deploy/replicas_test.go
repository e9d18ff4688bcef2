package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
	"aima/runtime"
)

// replicaSet is the chart's release with two replicas as Pods on the real
// node's bridge network.
type replicaSet struct {
	t    *testing.T
	c    *kube.Cluster
	node *kube.RealNode
	ns   string
}

// daemonPort is the port aima listens on in its Pods (the chart's
// default).
const daemonPort = "9090"

// apiJSON sends one JSON request with the token to the daemon at addr and
// decodes the answer, which must be 200.
func apiJSON(t *testing.T, addr, method, path string, in any) map[string]any {
	t.Helper()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("%s %s: %d %.500s", method, path, resp.StatusCode, raw)
	}
	return out
}

// services lists the leader's services: ID -> status.
func (r *replicaSet) services(addr string) map[string]string {
	r.t.Helper()
	out := apiJSON(r.t, addr, http.MethodGet, "/api/service/list", nil)
	items, _ := out["items"].([]any)
	m := map[string]string{}
	for _, it := range items {
		s, _ := it.(map[string]any)
		id, _ := s["id"].(string)
		st, _ := s["status"].(string)
		m[id] = st
	}
	return m
}

// waitStatus waits until service id has status on the leader at addr.
func (r *replicaSet) waitStatus(addr, id, status string) {
	r.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := r.services(addr)[id]
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("service %s is %q, want %s\n%s", id, got, status, podsReport(r.t, r.c, r.ns))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// enginePods are service id's Pods.
func (r *replicaSet) enginePods(id string) []corev1.Pod {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := r.c.Client.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: runtime.LabelService + "=" + id})
	if err != nil {
		r.t.Fatal(err)
	}
	return l.Items
}

// podUIDs are the UIDs of each service's Pods.
func (r *replicaSet) podUIDs(ids []string) map[string][]types.UID {
	out := map[string][]types.UID{}
	for _, id := range ids {
		for _, p := range r.enginePods(id) {
			out[id] = append(out[id], p.UID)
		}
		slices.Sort(out[id])
	}
	return out
}

// waitEngineRunning waits until service id has one Pod and its container
// runs.
func (r *replicaSet) waitEngineRunning(id string) {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ps := r.enginePods(id)
		if len(ps) == 1 && ps[0].Status.Phase == corev1.PodRunning && ps[0].Status.PodIP != "" {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("service %s: no running engine Pod (%d Pods)", id, len(ps))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pod returns the release's Pod name.
func (r *replicaSet) pod(name string) *corev1.Pod {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := r.c.Client.CoreV1().Pods(r.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// waitFollower waits until a Pod of the release other than the leader's
// runs aima as the follower of leader (its /readyz answers 503, role
// follower, naming the leader), and returns its name.
func (r *replicaSet) waitFollower(leader string) string {
	r.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l, err := r.c.Client.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=aima"})
		cancel()
		if err != nil {
			r.t.Fatal(err)
		}
		for _, p := range l.Items {
			if p.Name == leader || p.DeletionTimestamp != nil || p.Status.PodIP == "" {
				continue
			}
			resp, err := hc.Get("http://" + net.JoinHostPort(p.Status.PodIP, daemonPort) + "/readyz")
			if err != nil {
				continue
			}
			var body struct{ Role, Identity, Leader string }
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusServiceUnavailable && body.Role == "follower" && body.Identity == p.Name && body.Leader == leader {
				return p.Name
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no follower of %s\n%s", leader, podsReport(r.t, r.c, r.ns))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill kills aima in the Pod name with SIGKILL (its container's task), as
// a crash would, and deletes the Pod with grace 0 (as when its node is
// lost), so the Deployment replaces it with a Pod of a new name and the
// kubelet does not restart the container; it returns the time of the
// kill. (A container restarted in the same Pod would come back under the
// same lease identity and could take its lease again at once.)
func (r *replicaSet) kill(ctx context.Context, name string) time.Time {
	r.t.Helper()
	p := r.pod(name)
	if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].ContainerID == "" {
		r.t.Fatalf("Pod %s: containers %+v", name, p.Status.ContainerStatuses)
	}
	killed := time.Now()
	if err := r.node.KillContainer(ctx, p.Status.ContainerStatuses[0].ContainerID); err != nil {
		r.t.Fatal(err)
	}
	zero := int64(0)
	if err := r.c.Client.CoreV1().Pods(r.ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		r.t.Fatal(err)
	}
	return killed
}

// takeover checks what the new leader at addr leads with after a kill:
// every service of before listed, every service's Pods those it had
// (adopted, none started again).
func (r *replicaSet) takeover(what, addr string, before map[string]string, pods map[string][]types.UID) {
	r.t.Helper()
	got := r.services(addr)
	for id := range before {
		if _, ok := got[id]; !ok {
			r.t.Fatalf("%s: service %s lost in the takeover (the new leader lists %v)", what, id, got)
		}
	}
	ids := make([]string, 0, len(pods))
	for id := range pods {
		ids = append(ids, id)
	}
	now := r.podUIDs(ids)
	for id, uids := range pods {
		if !slices.Equal(now[id], uids) {
			r.t.Fatalf("%s: service %s has Pods %v after the takeover, want %v (adopted, not started again)", what, id, now[id], uids)
		}
	}
}

// The chart with two replicas (Pods on the real node's bridge, not the
// host's network: they reach the API server at the node's forward,
// RealNode.APIServer) and the leader's Pod killed, AIMA_SOAK_REPS times
// (`make soak`: 10), each time:
//
//   - mid-start: a service's engine Pod runs and its engine loads when the
//     leader's container is killed (SIGKILL, as a crash); the other
//     replica leads, the start resumes and reaches running with its one
//     engine Pod (the same UID), no record lost; the killed container is
//     restarted by the kubelet and follows;
//   - idle: every service runs when the leader's Pod is deleted (grace 0);
//     the other replica leads with every record and Pod, and the
//     Deployment's new Pod follows.
//
// The leader is reached as the Service's one ready endpoint (there is no
// kube-proxy; the host reaches Pod IPs over the bridge). The takeover
// times (kill to the new leader's ready endpoint) are logged with their
// median and worst (docs/performance.md).
func TestChartReplicasLeaderPodKilled(t *testing.T) {
	reps := testenv.SoakReps(t)
	sim, img := testenv.EngineSimImage(t), testenv.AimaImage(t)
	c := kube.Shared(t)
	node := kube.SharedRealNode(t, sim, img)
	c.InstallCRDs(t)
	ns := c.Namespace(t)
	apiHost, apiPort, err := net.SplitHostPort(node.APIServer)
	if err != nil {
		t.Fatal(err)
	}
	repo, tag, _ := strings.Cut(img, ":")
	install(t, c, ns, values(map[string]any{
		"image":    map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"replicas": 2,
		"env": []any{
			map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": apiHost},
			map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": apiPort},
		},
		"config": map[string]any{
			"kubernetes": map[string]any{"endpoint": "auto"},
			"engines": map[string]any{"vllm": map[string]any{"image": sim, "gpus": "none",
				// Real time: an engine loads for 20 s, so a start is still
				// creating when its leader is killed.
				"env": map[string]any{"SIM_TIME_SCALE": "1", "SIM_STARTUP": "20s", "SIM_MODEL_CHECK": "off"}}},
		},
	}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s\nkubelet:\n%s", podsReport(t, c, ns), node.Logs("kubelet", 30))
		}
	})
	r := &replicaSet{t: t, c: c, node: node, ns: ns}
	addr, leader := serviceEndpoint(t, c, ns, "r-aima", "")
	if p := r.pod(leader); p.Spec.HostNetwork || p.Spec.NodeName != node.Name || !strings.HasPrefix(p.Status.PodIP, "10.88.") {
		t.Fatalf("leader Pod %s: hostNetwork %v on %q at %s, want a Pod of the real node's bridge", leader, p.Spec.HostNetwork, p.Spec.NodeName, p.Status.PodIP)
	}
	follower := r.waitFollower(leader)
	t.Logf("leader %s at %s, follower %s", leader, addr, follower)

	var takeovers []time.Duration
	var ids []string
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	for rep := 1; rep <= reps; rep++ {
		// Mid-start: the engine Pod runs, the engine loads.
		out := apiJSON(t, addr, http.MethodPost, "/api/service/create", map[string]any{"model_id": "org/name", "engine_type": "vllm"})
		id, _ := out["id"].(string)
		if id == "" {
			t.Fatalf("create: %v", out)
		}
		ids = append(ids, id)
		apiJSON(t, addr, http.MethodPost, "/api/service/start", map[string]any{"service_id": id, "timeout_seconds": 900})
		r.waitEngineRunning(id)
		before, pods := r.services(addr), r.podUIDs(ids)
		if before[id] != "creating" {
			t.Fatalf("rep %d: the start is %q when its leader is killed, want creating", rep, before[id])
		}
		old, killed := leader, r.kill(ctx, leader)
		addr, leader = serviceEndpoint(t, c, ns, "r-aima", old)
		took := time.Since(killed)
		takeovers = append(takeovers, took)
		t.Logf("rep %d takeover %d (mid-start): %s, %s leads", rep, len(takeovers), took.Round(time.Millisecond), leader)
		r.takeover("mid-start", addr, before, pods)
		r.waitStatus(addr, id, "running")
		if got := r.podUIDs([]string{id})[id]; !slices.Equal(got, pods[id]) {
			t.Fatalf("rep %d: the resumed start has Pods %v, want its one Pod %v", rep, got, pods[id])
		}
		t.Logf("rep %d: the Deployment's new Pod %s follows", rep, r.waitFollower(leader))

		// Idle: every service runs, nothing in flight.
		before, pods = r.services(addr), r.podUIDs(ids)
		for _, id := range ids {
			if before[id] != "running" {
				t.Fatalf("rep %d: service %s is %q before the idle kill, want running", rep, id, before[id])
			}
		}
		old, killed = leader, r.kill(ctx, leader)
		addr, leader = serviceEndpoint(t, c, ns, "r-aima", old)
		took = time.Since(killed)
		takeovers = append(takeovers, took)
		t.Logf("rep %d takeover %d (idle): %s, %s leads", rep, len(takeovers), took.Round(time.Millisecond), leader)
		r.takeover("idle", addr, before, pods)
		for _, id := range ids {
			r.waitStatus(addr, id, "running")
		}
		t.Logf("rep %d: the Deployment's new Pod %s follows", rep, r.waitFollower(leader))
	}
	slices.Sort(takeovers)
	t.Logf("takeovers: %d, median %s, worst %s (lease 8s, retry 1s, readiness probe every 2s)", len(takeovers),
		testenv.Median(takeovers).Round(time.Millisecond), takeovers[len(takeovers)-1].Round(time.Millisecond))
}
