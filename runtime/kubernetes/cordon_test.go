package kubernetes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"aima/client"
	"aima/errs"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/internal/testenv/kube"
	"aima/runtime"
	"aima/services"
	"aima/tools"
)

// Cordon, drain and eviction across nodes, on the real control plane: two
// kwok nodes of one H100 each, in a pool of the test's own, whose Pods get
// loopback addresses where the test serves a stand-in engine (see
// engines_test.go), so services reach running. A service's Pod takes its
// node's one GPU whole, asleep or not.

// twoNodes is a test's two 1-GPU nodes and a daemon placing on them.
type twoNodes struct {
	e    env
	a, b string
	d    *daemontest.Daemon
	// block, while set, holds every chat request the stand-in engines get
	// until it is cleared (a busy service).
	block atomic.Bool
}

func newTwoNodes(t *testing.T) *twoNodes {
	t.Helper()
	e := newEnv(t)
	p := &twoNodes{e: e}
	p.a, p.b = e.engineNode(t, "a", 1), e.engineNode(t, "b", 1)
	e.serveEnginesWith(t, 20*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for p.block.Load() && strings.HasSuffix(r.URL.Path, "/chat/completions") && r.Context().Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`))
	}))
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{
		Image: "aima-enginesim:test", GPUs: "1",
		Extra: fmt.Sprintf("gpu_policy: pack\nruntime: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n  endpoint: pod_ip\n"+
			"  node_selector: {%s: %s}\n"+
			"  tolerations: [{key: %s, operator: Equal, value: fake, effect: NoSchedule}]\n"+
			"health_interval: 50ms\nliveness_interval: 200ms\nunhealthy_grace: 1h\n",
			e.c.Kubeconfig, e.ns, poolLabel, e.ns, kube.FakeNodeAnnotation),
	})
	p.d = daemontest.Start(t, cfg, daemontest.Options{})
	return p
}

// call runs a tool over the daemon's HTTP API.
func (p *twoNodes) call(t *testing.T, op string, in, out any) error {
	t.Helper()
	raw, err := client.New(p.d.URL).Call(ctxFor(t, 5*time.Minute), op, in, nil)
	if err != nil || out == nil {
		return err
	}
	return client.Decode(raw, out)
}

// create makes a vllm service named name.
func (p *twoNodes) create(t *testing.T, name string, evictable bool) services.Service {
	t.Helper()
	s, err := p.d.Domain.Services.Create(ctxFor(t, time.Minute), services.CreateSpec{Name: name, ModelID: "org/name", EngineType: "vllm", Evictable: evictable})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts the service and waits until it runs.
func (p *twoNodes) run(t *testing.T, id string) services.Service {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	m := p.d.Domain.Services
	if _, err := m.StartWith(ctx, id, services.StartOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	s, err := m.Wait(ctx, id, services.StatusRunning, time.Minute)
	if err != nil {
		s, _ = m.Get(context.Background(), id)
		t.Fatalf("service %s: %v (%s in %s: %s)", id, err, s.Status, s.Phase, s.Reason)
	}
	return s
}

// podsOf lists the service's live Pods: not ended (a stop ends the Pod and
// keeps it), not being deleted.
func (p *twoNodes) podsOf(t *testing.T, id string) []corev1.Pod {
	t.Helper()
	list, err := p.e.c.Client.CoreV1().Pods(p.e.ns).List(ctxFor(t, time.Minute), metav1.ListOptions{LabelSelector: runtime.LabelService + "=" + id})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, po := range list.Items {
		if po.DeletionTimestamp == nil && po.Status.Phase != corev1.PodFailed && po.Status.Phase != corev1.PodSucceeded {
			out = append(out, po)
		}
	}
	return out
}

// nodeOfPod is the node the service's one Pod is bound to.
func (p *twoNodes) nodeOfPod(t *testing.T, id string) string {
	t.Helper()
	pods := p.podsOf(t, id)
	if len(pods) != 1 {
		t.Fatalf("service %s has %d pods, want 1", id, len(pods))
	}
	return pods[0].Spec.NodeName
}

// messages are the messages of the service's events.
func (p *twoNodes) messages(t *testing.T, id string) []string {
	t.Helper()
	_, evs, err := p.d.Domain.Services.Events(ctxFor(t, time.Minute), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Message)
	}
	return out
}

func (p *twoNodes) saysAll(t *testing.T, id string, parts ...string) {
	t.Helper()
	msgs := p.messages(t, id)
	if !slices.ContainsFunc(msgs, func(m string) bool {
		for _, x := range parts {
			if !strings.Contains(m, x) {
				return false
			}
		}
		return true
	}) {
		t.Errorf("events of %s lack %q:\n%s", id, parts, strings.Join(msgs, "\n"))
	}
}

// chat sends one chat request for the service through the gateway.
func (p *twoNodes) chat(t *testing.T, id string) int {
	body, _ := json.Marshal(map[string]any{"model": id, "messages": []map[string]string{{"role": "user", "content": "hi"}}})
	req, err := http.NewRequestWithContext(ctxFor(t, 2*time.Minute), http.MethodPost, p.d.URL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode
}

// TestClusterCordonAndDrainANode: a node cordoned by name takes no new
// service (gpu_list and model_fit say so; a start goes to the other node,
// and one more is refused in schedule with the cordon named, before any
// Pod exists; the Kubernetes Node is left alone); draining a node moves its
// running service to the other node (a new Pod there), and a service no
// other node can take stays stopped with the reason.
func TestClusterCordonAndDrainANode(t *testing.T) {
	p := newTwoNodes(t)
	m := p.d.Domain.Services
	ctx := ctxFor(t, 5*time.Minute)

	var cr services.CordonResult
	if err := p.call(t, "gpu_cordon", tools.GPUCordonInput{GPU: p.a, Reason: "maintenance"}, &cr); err != nil {
		t.Fatal(err)
	}
	if cr.Node != p.a || len(cr.Cordons) != 1 || cr.Cordons[0].UUID != p.a+"/0" || cr.Cordons[0].Node != p.a {
		t.Fatalf("cordon of node %s: %+v", p.a, cr)
	}
	if err := p.call(t, "gpu_cordon", tools.GPUCordonInput{GPU: p.e.ns + "-nope"}, nil); !errs.Is(err, errs.NotFound) || !strings.Contains(err.Error(), "no GPU node or GPU named") {
		t.Errorf("cordon of an unknown node: %v; want not_found", err)
	}
	if n, err := p.e.c.Client.CoreV1().Nodes().Get(ctx, p.a, metav1.GetOptions{}); err != nil || n.Spec.Unschedulable {
		t.Errorf("the Node itself: unschedulable %v, %v; aima never changes it", n.Spec.Unschedulable, err)
	}
	var inv tools.GPUListOutput
	if err := p.call(t, "gpu_list", struct{}{}, &inv); err != nil {
		t.Fatal(err)
	}
	for _, n := range inv.Nodes {
		if want := map[string]int{p.a: 1}[n.Name]; n.Cordoned != want || (n.Name == p.a && n.Free != 0) {
			t.Errorf("gpu_list node %s: cordoned %d, free %d", n.Name, n.Cordoned, n.Free)
		}
	}
	for _, d := range inv.Items {
		if (d.Node == p.a) != (d.Cordon != nil) {
			t.Errorf("gpu_list GPU %s: cordon %+v", d.UUID, d.Cordon)
		}
	}
	fit, err := m.Fit(ctx, services.FitRequest{ModelID: "org/name", GPUs: "1"})
	if err != nil || !fit.Fits || fit.Node != p.b {
		t.Fatalf("model_fit: %+v, %v; want node %s", fit, err, p.b)
	}
	for _, n := range fit.Nodes {
		if n.Node == p.a && (n.Fits || !strings.Contains(n.Reason, "is cordoned (maintenance) in aima")) {
			t.Errorf("model_fit on the cordoned node: %+v", n)
		}
	}

	first := p.create(t, "first", false)
	p.run(t, first.ID)
	if got := p.nodeOfPod(t, first.ID); got != p.b {
		t.Fatalf("first runs on %s; want %s (%s cordoned)", got, p.b, p.a)
	}
	second := p.create(t, "second", false)
	if _, err := m.StartWith(ctx, second.ID, services.StartOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	s, err := m.Wait(ctx, second.ID, services.StatusFailed, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if s.Failure != services.FailureUnschedulable || s.Phase != services.PhaseSchedule ||
		!strings.Contains(s.Reason, "every GPU of node "+p.a+" is cordoned (maintenance) in aima") {
		t.Errorf("second: %s in %s: %s", s.Failure, s.Phase, s.Reason)
	}
	if pods := p.podsOf(t, second.ID); len(pods) != 0 {
		t.Errorf("the refused service has %d Pods", len(pods))
	}

	// Uncordon a, drain b: first moves to a in a new Pod.
	var un services.CordonResult
	if err := p.call(t, "gpu_uncordon", tools.GPURef{GPU: p.a}, &un); err != nil || len(un.Cordons) != 1 || un.Node != p.a {
		t.Fatalf("uncordon: %+v, %v", un, err)
	}
	oldPod := p.podsOf(t, first.ID)[0].Name
	var res services.DrainResult
	if err := p.call(t, "gpu_drain", tools.GPUDrainInput{GPU: p.b, Reason: "kernel update"}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Node != p.b || len(res.Cordons) != 1 || len(res.Moves) != 1 || res.Moves[0].ServiceID != first.ID ||
		res.Moves[0].Outcome != services.DrainMoved || res.Moves[0].Node != p.a {
		t.Fatalf("drain of %s: %+v", p.b, res)
	}
	s, err = m.Get(ctx, first.ID)
	if err != nil || s.Status != services.StatusRunning || s.GPULease == nil || s.GPULease.Node != p.a {
		t.Fatalf("after the drain: %+v, %v", s, err)
	}
	pods := p.podsOf(t, first.ID)
	if len(pods) != 1 || pods[0].Name == oldPod || pods[0].Spec.NodeName != p.a {
		t.Errorf("after the drain: pods %v; want one new Pod on %s", podNodes(pods), p.a)
	}
	p.saysAll(t, first.ID, "node "+p.b+" is being drained", "stopping this service to start it again on GPU 0 on node "+p.a)
	p.saysAll(t, first.ID, "moved off drained node "+p.b+": running on GPU 0 on node "+p.a)

	// Drain a with b still cordoned: nowhere to go, first stays stopped.
	if err := p.call(t, "gpu_drain", tools.GPUDrainInput{GPU: p.a + "/0"}, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Moves) != 1 || res.Moves[0].Outcome != services.DrainStopped ||
		!strings.Contains(res.Moves[0].Reason, "no other GPU can take it") || !strings.Contains(res.Moves[0].Reason, "every GPU of node "+p.b+" is cordoned (kernel update)") {
		t.Errorf("drain of %s/0: %+v", p.a, res)
	}
	if s, err = m.Get(ctx, first.ID); err != nil || s.Status != services.StatusStopped || s.GPULease != nil {
		t.Errorf("after the second drain: %s, lease %+v, %v", s.Status, s.GPULease, err)
	}
	if pods := p.podsOf(t, first.ID); len(pods) != 0 {
		t.Errorf("pods of the stopped service: %v", podNodes(pods))
	}
}

func podNodes(pods []corev1.Pod) []string {
	var out []string
	for _, po := range pods {
		out = append(out, po.Name+"@"+po.Spec.NodeName)
	}
	return out
}

// TestClusterEvictionStopsTheLeastRecentlyUsed: with both nodes held by
// idle evictable services, a start evicts the least recently used one (its
// Pod deleted, the service stopped, both sides' events saying so) and
// lands on its node; a busy service and one that is not evictable are
// never evicted: the start is then refused.
func TestClusterEvictionStopsTheLeastRecentlyUsed(t *testing.T) {
	p := newTwoNodes(t)
	m := p.d.Domain.Services
	ctx := ctxFor(t, 5*time.Minute)
	older := p.create(t, "older", true)
	p.run(t, older.ID)
	newer := p.create(t, "newer", true)
	p.run(t, newer.ID)
	// A request to older makes newer the least recently used.
	if code := p.chat(t, older.ID); code != http.StatusOK {
		t.Fatalf("request to older: HTTP %d", code)
	}
	lruNode := p.nodeOfPod(t, newer.ID)
	lruPod := p.podsOf(t, newer.ID)[0].Name

	third := p.create(t, "third", false)
	s := p.run(t, third.ID)
	if got := p.nodeOfPod(t, third.ID); got != lruNode || s.GPULease.Node != lruNode {
		t.Errorf("third on %s (lease %+v); want the evicted service's node %s", got, s.GPULease, lruNode)
	}
	ev, err := m.Get(ctx, newer.ID)
	if err != nil || ev.Status != services.StatusStopped || ev.LastEviction == nil || ev.LastEviction.By != third.ID || ev.LastEviction.Node != lruNode {
		t.Fatalf("newer after the eviction: %s, %+v, %v", ev.Status, ev.LastEviction, err)
	}
	if po, err := p.e.c.Client.CoreV1().Pods(p.e.ns).Get(ctx, lruPod, metav1.GetOptions{}); err == nil && po.Status.Phase != corev1.PodFailed {
		t.Errorf("the evicted service's Pod %s still runs: %s", lruPod, po.Status.Phase)
	}
	if o, err := m.Get(ctx, older.ID); err != nil || o.Status != services.StatusRunning {
		t.Errorf("older: %s, %v; want running", o.Status, err)
	}
	p.saysAll(t, third.ID, "made room on GPU 0 on node "+lruNode, "stopped service "+newer.ID, "least recently used idle evictable")
	p.saysAll(t, newer.ID, "evicted: service "+third.ID, "needed GPU 0 on node "+lruNode)

	// older (evictable) busy with a request, third not evictable: a fourth
	// start finds nothing to evict and is refused; neither is touched.
	p.block.Store(true)
	busy := make(chan int, 1)
	go func() { busy <- p.chat(t, older.ID) }()
	err = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		o, err := m.Get(ctx, older.ID)
		return err == nil && o.Traffic != nil && o.Traffic.InFlight > 0, nil
	})
	if err != nil {
		p.block.Store(false)
		t.Fatalf("older never busy: %v", err)
	}
	fourth := p.create(t, "fourth", true)
	if _, err := m.StartWith(ctx, fourth.ID, services.StartOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	f, err := m.Wait(ctx, fourth.ID, services.StatusFailed, time.Minute)
	p.block.Store(false)
	if err != nil || f.Failure != services.FailureUnschedulable {
		t.Errorf("fourth: %s %s: %s, %v; want refused", f.Status, f.Failure, f.Reason, err)
	}
	if code := <-busy; code != http.StatusOK {
		t.Errorf("the busy service's request: HTTP %d", code)
	}
	p.saysAll(t, fourth.ID, "no idle service to evict", older.ID+" busy")
	for _, id := range []string{older.ID, third.ID} {
		if s, err := m.Get(ctx, id); err != nil || s.Status != services.StatusRunning || len(p.podsOf(t, id)) != 1 {
			t.Errorf("service %s after the refused start: %s, %v", id, s.Status, err)
		}
	}
}
