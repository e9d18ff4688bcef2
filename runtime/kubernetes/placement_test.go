package kubernetes_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"aima/errs"
	"aima/gpu"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/internal/testenv/kube"
	"aima/runtime"
	"aima/runtime/kubernetes"
	"aima/services"
)

// Placement across nodes, on the real control plane: kwok nodes carrying
// GPU Feature Discovery labels and allocatable nvidia.com/gpu, the real
// scheduler binding aima's Pods. Each test's nodes carry a pool label of
// its own, and its daemons select that pool (node_selector), so nodes of
// other tests never count.

// poolLabel marks a test's nodes.
const poolLabel = "aima.test/pool"

// pool is the labels of the test's nodes: its namespace's pool.
func (e env) pool() map[string]string { return map[string]string{poolLabel: e.ns} }

// gpuPool is three nodes of 8 H100 80 GB GPUs and two of one A10 24 GB.
type gpuPool struct {
	e                         env
	h100a, h100b, h100c       string
	a10a, a10b                string
	small, medium, tooBig     string // model IDs, registered on each daemon
	smallDir, mediumDir, huge string
}

func newGPUPool(t *testing.T) *gpuPool {
	t.Helper()
	e := newEnv(t)
	p := &gpuPool{e: e, h100a: e.ns + "-ha", h100b: e.ns + "-hb", h100c: e.ns + "-hc", a10a: e.ns + "-aa", a10b: e.ns + "-ab"}
	for _, n := range []string{p.h100a, p.h100b, p.h100c} {
		e.c.AddGPUNode(t, kube.GPUNode{Name: n, GPUs: 8, Product: "NVIDIA-H100-80GB-HBM3", MemMiB: 81559, Labels: e.pool()})
	}
	for _, n := range []string{p.a10a, p.a10b} {
		e.c.AddGPUNode(t, kube.GPUNode{Name: n, GPUs: 1, Product: "NVIDIA-A10", MemMiB: 23028, Labels: e.pool()})
	}
	// vLLM takes 0.9 of a GPU: 20.2 GiB of an A10, 71.7 GiB of an H100.
	p.smallDir, p.mediumDir, p.huge = sizedModel(t, "small", 4), sizedModel(t, "medium", 40), sizedModel(t, "huge", 200)
	return p
}

// sizedModel is a model directory whose weights are gib GiB.
func sizedModel(t *testing.T, name string, gib int64) string {
	dir := testenv.MakeModel(t, name)
	index := fmt.Sprintf(`{"metadata":{"total_size":%d},"weight_map":{}}`, gib<<30)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// daemon runs a daemon on the test's namespace and pool with gpu_policy
// policy, with the pool's models registered.
func (p *gpuPool) daemon(t *testing.T, policy string) *daemontest.Daemon {
	t.Helper()
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{
		Image: "aima-enginesim:test", GPUs: "auto",
		Extra: fmt.Sprintf("gpu_policy: %s\nruntime: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n"+
			"  node_selector: {%s: %s}\n"+
			"  tolerations: [{key: %s, operator: Equal, value: fake, effect: NoSchedule}]\n",
			policy, p.e.c.Kubeconfig, p.e.ns, poolLabel, p.e.ns, kube.FakeNodeAnnotation),
	})
	d := daemontest.Start(t, cfg, daemontest.Options{})
	ctx := ctxFor(t, time.Minute)
	for _, m := range []struct{ dir, name string }{{p.smallDir, "small"}, {p.mediumDir, "medium"}, {p.huge, "huge"}} {
		mod, err := d.Domain.Models.Add(ctx, m.dir, m.name)
		if err != nil {
			t.Fatal(err)
		}
		switch m.name {
		case "small":
			p.small = mod.ID
		case "medium":
			p.medium = mod.ID
		default:
			p.tooBig = mod.ID
		}
	}
	return d
}

// start creates and starts a service of model on d with gpus.
func start(t *testing.T, d *daemontest.Daemon, model, gpus string) services.Service {
	t.Helper()
	s, err := startErr(ctxFor(t, time.Minute), d, model, gpus)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startErr(ctx context.Context, d *daemontest.Daemon, model, gpus string) (services.Service, error) {
	s, err := d.Domain.Services.Create(ctx, services.CreateSpec{ModelID: model, EngineType: "vllm", GPUs: gpus})
	if err != nil {
		return s, err
	}
	// kwok's Pods run no engine: the start waits in its health check,
	// holding its lease, until the test ends.
	_, err = d.Domain.Services.StartWith(ctx, s.ID, services.StartOptions{Timeout: 10 * time.Minute})
	return s, err
}

// boundPod waits until the service's Pod is bound to a node and returns
// it.
func (p *gpuPool) boundPod(t *testing.T, d *daemontest.Daemon, id string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextCancel(ctxFor(t, time.Minute), 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := p.e.c.Client.CoreV1().Pods(p.e.ns).List(ctx, metav1.ListOptions{LabelSelector: runtime.LabelService + "=" + id})
		if err != nil || len(list.Items) == 0 || list.Items[0].Spec.NodeName == "" {
			return false, nil
		}
		pod = &list.Items[0]
		return true, nil
	})
	if err != nil {
		s, _ := d.Domain.Services.Get(context.Background(), id)
		t.Fatalf("no bound pod for %s: %v (service %s phase %s: %s)\n%s", id, err, s.Status, s.Phase, s.Reason, d.Logs.String())
	}
	return pod
}

// pinnedTo is the node the Pod's required node affinity names.
func pinnedTo(t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Fatalf("pod %s has no required node affinity", pod.Name)
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 || terms[0].MatchExpressions[0].Key != kubernetes.LabelHostname ||
		len(terms[0].MatchExpressions[0].Values) != 1 {
		t.Fatalf("pod %s affinity %+v", pod.Name, terms)
	}
	return terms[0].MatchExpressions[0].Values[0]
}

// landsOn checks that the service's Pod is pinned to node, bound there by
// the scheduler, and asks for gpus GPUs.
func (p *gpuPool) landsOn(t *testing.T, d *daemontest.Daemon, id, node string, gpus int64) {
	t.Helper()
	pod := p.boundPod(t, d, id)
	if got := pinnedTo(t, pod); got != node || pod.Spec.NodeName != node {
		t.Errorf("service %s: pinned to %s, bound to %s; want %s", id, got, pod.Spec.NodeName, node)
	}
	if q := pod.Spec.Containers[0].Resources.Limits[kubernetes.ResourceGPU]; q.Value() != gpus {
		t.Errorf("service %s: nvidia.com/gpu limit %s; want %d", id, q.String(), gpus)
	}
	s, err := d.Domain.Services.Get(context.Background(), id)
	if err != nil || s.GPULease == nil || s.GPULease.Node != node {
		t.Errorf("service %s lease %+v, %v; want on node %s", id, s.GPULease, err, node)
	}
}

// nodeOf finds a node in gpu_list's view.
func nodeOf(t *testing.T, snap gpu.Snapshot, name string) gpu.Node {
	t.Helper()
	for _, n := range snap.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("node %s not in gpu list %+v", name, snap.Nodes)
	return gpu.Node{}
}

func TestPlacementRefusesBeforeAnyPodWhenNoNodeFits(t *testing.T) {
	p := newGPUPool(t)
	d := p.daemon(t, "pack")
	m := d.Domain.Services
	ctx := ctxFor(t, 2*time.Minute)
	snap, err := m.GPUList(ctx)
	if err != nil || len(snap.Nodes) != 5 || len(snap.Devices) != 26 {
		t.Fatalf("gpu list: %d nodes, %d GPUs, %v; want 5 and 26", len(snap.Nodes), len(snap.Devices), err)
	}
	if n := nodeOf(t, snap, p.h100a); n.Product != "NVIDIA-H100-80GB-HBM3" || n.GPUs != 8 || n.Free != 8 || !n.Ready || n.Skipped != "" ||
		n.MemoryPerGPUBytes == nil || *n.MemoryPerGPUBytes != 81559<<20 {
		t.Errorf("h100 node %+v", n)
	}

	s := start(t, d, p.tooBig, "1")
	s, err = m.Wait(ctx, s.ID, services.StatusFailed, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("refused: %s", s.Reason)
	if s.Failure != services.FailureUnschedulable || s.Phase != services.PhaseSchedule {
		t.Errorf("failure %s in phase %s; want unschedulable in schedule", s.Failure, s.Phase)
	}
	for _, want := range []string{"no node of 5 fits", "node " + p.h100a + ": ", "node " + p.a10a + ": ", "79.6 GiB", "22.5 GiB", "--tensor-parallel-size 4"} {
		if !strings.Contains(s.Reason, want) {
			t.Errorf("reason lacks %q: %s", want, s.Reason)
		}
	}
	list, err := p.e.c.Client.CoreV1().Pods(p.e.ns).List(ctx, metav1.ListOptions{LabelSelector: runtime.LabelService + "=" + s.ID})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("pods of the refused service: %d, %v; want none", len(list.Items), err)
	}

	// model_fit answers per node: the medium model fits the H100 nodes
	// (pack picks the first by name), not the A10s.
	fit, err := m.Fit(ctx, services.FitRequest{ModelID: p.medium})
	if err != nil || !fit.Fits || fit.Node != p.h100a || len(fit.Nodes) != 5 {
		t.Fatalf("fit %+v, %v", fit, err)
	}
	for _, n := range fit.Nodes {
		a10 := n.Node == p.a10a || n.Node == p.a10b
		if n.Fits == a10 || (a10 && !strings.Contains(n.Reason, "allows 20.2 GiB")) {
			t.Errorf("node %s: fits %v (%s)", n.Node, n.Fits, n.Reason)
		}
	}
	fit, err = m.Fit(ctx, services.FitRequest{ModelID: p.tooBig})
	if err != nil || fit.Fits || len(fit.Nodes) != 5 || !strings.Contains(fit.Reason, "no node of 5 fits") {
		t.Errorf("fit of the huge model %+v, %v", fit, err)
	}
}

func TestPlacementPackSpreadAndTheLastGPU(t *testing.T) {
	p := newGPUPool(t)
	pack := p.daemon(t, "pack")
	// Pack: the small model goes to an A10 (the fewest GPUs that fit),
	// the medium one to an H100, the first by name.
	small := start(t, pack, p.small, "auto")
	p.landsOn(t, pack, small.ID, p.a10a, 1)
	medium := start(t, pack, p.medium, "2")
	p.landsOn(t, pack, medium.ID, p.h100a, 2)

	// Two services compete for the last A10: one gets it, the other the
	// H100 node with the fewest GPUs free.
	var wg sync.WaitGroup
	ids, errs := make([]string, 2), make([]error, 2)
	ctx := ctxFor(t, time.Minute)
	for i := range ids {
		wg.Go(func() {
			s, err := startErr(ctx, pack, p.small, "1")
			ids[i], errs[i] = s.ID, err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int{}
	for _, id := range ids {
		got[p.boundPod(t, pack, id).Spec.NodeName]++
	}
	if got[p.a10b] != 1 || got[p.h100a] != 1 {
		t.Errorf("competing services landed on %v; want one on %s, one on %s", got, p.a10b, p.h100a)
	}

	// A second daemon (another store) spreads: its Pods go to the H100
	// node with the most GPUs free; the first daemon's Pods count as
	// other Pods there.
	spread := p.daemon(t, "spread")
	snap, err := spread.Domain.Services.GPUList(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n := nodeOf(t, snap, p.h100a); n.RequestedByOthers != 3 || n.Free != 5 || len(n.OtherPods) != 2 {
		t.Errorf("h100-a as the other daemon sees it: %+v", n)
	}
	one := start(t, spread, p.medium, "1")
	p.landsOn(t, spread, one.ID, p.h100b, 1)
	two := start(t, spread, p.medium, "4")
	p.landsOn(t, spread, two.ID, p.h100c, 4)
}

func TestPlacementSkipsCordonedAndNotReadyNodesAndCountsOtherPods(t *testing.T) {
	p := newGPUPool(t)
	ctx := ctxFor(t, 2*time.Minute)
	cs := p.e.c.Client.CoreV1()
	// A Pod that is not aima's takes 3 GPUs of h100-c.
	p.e.otherPod(t, p.h100c, 3)
	// h100-a cordoned; a 16-GPU node that never becomes ready.
	if _, err := cs.Nodes().Patch(ctx, p.h100a, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	notReady := p.e.ns + "-nr"
	res := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"), kubernetes.ResourceGPU: resource.MustParse("16")}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: notReady, Labels: map[string]string{
			kubernetes.LabelHostname: notReady, poolLabel: p.e.ns,
			kubernetes.LabelGPUProduct: "NVIDIA-H100-80GB-HBM3", kubernetes.LabelGPUMemory: "81559", kubernetes.LabelGPUCount: "16"}},
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res, Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "container runtime is down"}}},
	}
	if _, err := cs.Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Nodes().Delete(context.Background(), notReady, metav1.DeleteOptions{}) })

	d := p.daemon(t, "spread")
	m := d.Domain.Services
	var snap gpu.Snapshot
	// The other Pod counts once the scheduler's binding reached the watch.
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var err error
		snap, err = m.GPUList(ctx)
		return err == nil && nodeOf(t, snap, p.h100c).RequestedByOthers == 3, nil
	})
	if err != nil {
		t.Fatalf("the other Pod's GPUs never counted: %+v", snap.Nodes)
	}
	hc := nodeOf(t, snap, p.h100c)
	if hc.Free != 5 || len(hc.OtherPods) != 1 || hc.OtherPods[0] != p.e.ns+"/cuda-job" {
		t.Errorf("h100-c %+v; want 5 free, the other Pod named", hc)
	}
	for _, dev := range snap.Devices {
		taken := dev.Node == p.h100c && dev.Index >= 5
		if taken != (dev.RequestedBy != "") {
			t.Errorf("GPU %s requested by %q", dev.UUID, dev.RequestedBy)
		}
	}
	ha, nr := nodeOf(t, snap, p.h100a), nodeOf(t, snap, notReady)
	if !ha.Unschedulable || !strings.HasPrefix(ha.Skipped, "cordoned") || ha.Free != 0 {
		t.Errorf("cordoned node %+v", ha)
	}
	if nr.Ready || !strings.Contains(nr.Skipped, "not ready") || !strings.Contains(nr.Skipped, "container runtime is down") || nr.GPUs != 16 {
		t.Errorf("not-ready node %+v", nr)
	}

	// Spread would take the 16-GPU node, then the cordoned one; both are
	// skipped, and h100-c has 3 GPUs fewer: h100-b it is.
	s := start(t, d, p.medium, "2")
	p.landsOn(t, d, s.ID, p.h100b, 2)
	fit, err := m.Fit(ctx, services.FitRequest{ModelID: p.medium, GPUs: "8"})
	if err != nil || fit.Fits {
		t.Fatalf("fit of 8 GPUs: %+v, %v; want no node (b has 6 free, c 5)", fit, err)
	}
	for _, n := range fit.Nodes {
		if n.Node == notReady && !strings.HasPrefix(n.Reason, "skipped: not ready") {
			t.Errorf("not-ready node in model_fit: %+v", n)
		}
		if n.Node == p.h100c && (n.Fit != 5 || !strings.Contains(n.Reason, "requested by other Pods")) {
			t.Errorf("h100-c in model_fit: %+v", n)
		}
	}
}

// otherPod runs a Pod that is not aima's on node, taking gpus GPUs, and
// waits until it runs.
func (e env) otherPod(t testing.TB, node string, gpus int64) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cuda-job", Namespace: e.ns},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Tolerations: []corev1.Toleration{kube.FakeNodeToleration},
			Containers: []corev1.Container{{Name: "job", Image: "cuda-job:1", Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{kubernetes.ResourceGPU: *resource.NewQuantity(gpus, resource.DecimalSI)}}}},
		},
	}
	if _, err := e.c.Client.CoreV1().Pods(e.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := e.c.Client.CoreV1().Pods(e.ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("pod %s not running: %v", pod.Name, err)
	}
}

// limited is a runtime on the test's namespace as a user RBAC grants
// nothing, closed when the test ends.
// removeOtherPod deletes otherPod's Pod at once, giving its GPUs back.
func (e env) removeOtherPod(t testing.TB) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	zero := int64(0)
	if err := e.c.Client.CoreV1().Pods(e.ns).Delete(ctx, "cuda-job", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
}

func (e env) limited(t *testing.T) *kubernetes.Kube {
	t.Helper()
	path := t.TempDir() + "/kubeconfig"
	if err := os.WriteFile(path, []byte(kube.Kubeconfig(e.c.Host, kube.LimitedToken)), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := kubernetes.New(kubernetes.Options{Kubeconfig: path, Namespace: e.ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func TestPlacementWithoutPermissionToReadNodes(t *testing.T) {
	e := newEnv(t)
	k := e.limited(t)
	ctx := ctxFor(t, time.Minute)
	if _, err := k.GPUNodes(ctx); !errs.Is(err, errs.PermissionDenied) {
		t.Fatalf("GPUNodes without permission: %v; want permission_denied", err)
	}
	// The inventory is then empty with a note: starts ask for a count,
	// unchecked, as on a host without nvidia-smi.
	snap, err := gpu.ClusterSource{Nodes: k}.Read(ctx)
	if err != nil || len(snap.Devices) != 0 || !strings.Contains(snap.Note, "cannot be read") {
		t.Errorf("inventory %+v, %v", snap, err)
	}
}
