package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"aima/errs"
	"aima/runtime"
)

// The cluster's GPUs, for placement across nodes: one watch of the nodes
// and one of every namespace's Pods bound to a node and not terminated
// (what the scheduler counts against a node's allocatable), both started
// on the first GPUNodes call and shared by the whole daemon, never one per
// service. Their caches hold only what placement reads (see slimNode,
// slimBoundPod), so a large cluster costs little memory.

// GPU Feature Discovery's node labels.
const (
	LabelGPUProduct = "nvidia.com/gpu.product"
	LabelGPUMemory  = "nvidia.com/gpu.memory" // MiB per GPU
	LabelGPUCount   = "nvidia.com/gpu.count"
	// LabelHostname is the well-known label node affinity pins Pods with.
	LabelHostname = "kubernetes.io/hostname"
)

// nodeIndex indexes the Pod watch by the node a Pod is bound to.
const nodeIndex = "node"

// nodeWatch is the runtime's view of the cluster's nodes and of every
// namespace's Pods on them.
type nodeWatch struct {
	once    sync.Once
	allowed atomic.Bool // the permission check passed once
	started atomic.Bool // nodes and pods are set
	nodes   cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
}

var _ runtime.GPUNodeLister = (*Kube)(nil)

// GPUNodes lists the nodes engine Pods may land on (those matching the
// configured node selector) that offer nvidia.com/gpu, with their GPU
// Feature Discovery figures, readiness, cordon, the first taint the Pods
// do not tolerate, and what the Pods bound to each request. It reads the
// watches' caches; the first call starts them and waits (within ctx) for
// their first list. Without the permission to list nodes or Pods in all
// namespaces it returns an errs.PermissionDenied error.
func (k *Kube) GPUNodes(ctx context.Context) ([]runtime.GPUNode, error) {
	w := &k.nodeWatch
	if !w.allowed.Load() {
		if err := k.checkNodeAccess(ctx); err != nil {
			return nil, err
		}
		w.allowed.Store(true)
	}
	w.once.Do(k.startNodeWatch)
	if err := k.waitSynced(ctx, func() bool { return w.nodes.HasSynced() && w.pods.HasSynced() }); err != nil {
		return nil, err
	}
	sel := labels.SelectorFromSet(k.opts.NodeSelector)
	tols := k.tolerations(true)
	var out []runtime.GPUNode
	for _, obj := range w.nodes.GetStore().List() {
		n, ok := obj.(*corev1.Node)
		if !ok || !sel.Matches(labels.Set(n.Labels)) {
			continue
		}
		q := n.Status.Allocatable[ResourceGPU]
		if q.Value() <= 0 {
			continue
		}
		g := runtime.GPUNode{Name: n.Name, Hostname: n.Labels[LabelHostname], Product: n.Labels[LabelGPUProduct],
			Allocatable: int(q.Value()), Unschedulable: n.Spec.Unschedulable}
		if g.Hostname == "" {
			g.Hostname = n.Name
		}
		if v, err := strconv.ParseInt(n.Labels[LabelGPUMemory], 10, 64); err == nil && v > 0 && v < 1<<24 {
			g.MemoryMiB = v
		}
		if v, err := strconv.Atoi(n.Labels[LabelGPUCount]); err == nil && v > 0 {
			g.LabelCount = v
		}
		g.Ready, g.NotReady = nodeReady(n)
		g.Untolerated = untolerated(n, tols)
		pods, _ := w.pods.GetIndexer().ByIndex(nodeIndex, n.Name)
		for _, po := range pods {
			p, ok := po.(*corev1.Pod)
			if !ok {
				continue
			}
			gpus := podGPUs(p)
			if gpus == 0 {
				continue
			}
			if p.Labels[runtime.LabelStore] == k.opts.StoreID && k.opts.StoreID != "" {
				g.RequestedOwn += gpus
				continue
			}
			g.RequestedOthers += gpus
			if len(g.OtherPods) < runtime.MaxOtherPods {
				g.OtherPods = append(g.OtherPods, p.Namespace+"/"+p.Name)
			}
		}
		sort.Strings(g.OtherPods)
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// checkNodeAccess asks for one node and one Pod of any namespace, so a
// daemon without the permission learns it at once instead of from a watch
// that retries for ever.
func (k *Kube) checkNodeAccess(ctx context.Context) error {
	if err := k.listOne(ctx, "nodes", "", ""); err != nil {
		return classify(err, "list nodes")
	}
	if err := k.listOne(ctx, "pods", metav1.NamespaceAll, boundPods); err != nil {
		return classify(err, "list pods in all namespaces")
	}
	return nil
}

// boundPods selects the Pods that count against a node's allocatable, as
// the scheduler counts them: bound to a node and not terminated.
const boundPods = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"

func (k *Kube) startNodeWatch() {
	w := &k.nodeWatch
	rc := k.api.Core
	nodeLW := cache.NewListWatchFromClient(rc, "nodes", metav1.NamespaceAll, fields.Everything())
	w.nodes = cache.NewSharedIndexInformer(nodeLW, &corev1.Node{}, 0, cache.Indexers{})
	_ = w.nodes.SetTransform(slimNode)
	podLW := cache.NewFilteredListWatchFromClient(rc, "pods", metav1.NamespaceAll, func(o *metav1.ListOptions) { o.FieldSelector = boundPods })
	w.pods = cache.NewSharedIndexInformer(podLW, &corev1.Pod{}, 0, cache.Indexers{nodeIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}})
	_ = w.pods.SetTransform(slimBoundPod)
	// A Pod leaving the cache wakes waitUncounted.
	_, _ = w.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			k.mu.Lock()
			k.notifyLocked(countedKey(p.Namespace + "/" + p.Name))
			k.mu.Unlock()
		}
	}})
	w.started.Store(true)
	for _, inf := range []cache.SharedIndexInformer{w.nodes, w.pods} {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			inf.RunWithContext(k.ctx)
		}()
	}
}

// waitSynced waits within ctx (and the runtime's life) until synced.
func (k *Kube) waitSynced(ctx context.Context, synced func() bool) error {
	if synced() {
		return nil
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(k.ctx, cancel)
	defer stop()
	if !cache.WaitForCacheSync(waitCtx.Done(), synced) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("kubernetes watch: %w", err)
		}
		return errs.New(errs.Unavailable, "kubernetes API server unavailable")
	}
	return nil
}

// slimNode keeps of a Node what placement reads: labels, cordon, taints,
// allocatable GPUs and the Ready condition (a node's status also lists
// every image it holds, which can be large).
func slimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels},
		Spec:       corev1.NodeSpec{Unschedulable: n.Spec.Unschedulable, Taints: n.Spec.Taints},
	}
	if q, ok := n.Status.Allocatable[ResourceGPU]; ok {
		out.Status.Allocatable = corev1.ResourceList{ResourceGPU: q}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message}}
		}
	}
	return out, nil
}

// slimBoundPod keeps of a Pod its identity, store label, node, phase and GPU
// request.
func slimBoundPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion},
		Spec:       corev1.PodSpec{NodeName: p.Spec.NodeName},
		Status:     corev1.PodStatus{Phase: p.Status.Phase},
	}
	if v, ok := p.Labels[runtime.LabelStore]; ok {
		out.Labels = map[string]string{runtime.LabelStore: v}
	}
	if n := podGPUs(p); n > 0 {
		q := *resource.NewQuantity(int64(n), resource.DecimalSI)
		out.Spec.Containers = []corev1.Container{{Name: containerName, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{ResourceGPU: q}}}}
	}
	return out, nil
}

// podGPUs is the Pod's effective nvidia.com/gpu request as the scheduler
// computes it: the sum over its containers, or the largest init
// container's when larger. An extended resource's request equals its
// limit; a container that gives only the limit requests that much.
func podGPUs(p *corev1.Pod) int {
	of := func(c corev1.Container) int {
		if q, ok := c.Resources.Requests[ResourceGPU]; ok {
			return int(q.Value())
		}
		q := c.Resources.Limits[ResourceGPU]
		return int(q.Value())
	}
	sum := 0
	for _, c := range p.Spec.Containers {
		sum += of(c)
	}
	for _, c := range p.Spec.InitContainers {
		sum = max(sum, of(c))
	}
	return sum
}

// nodeReady reports the node's Ready condition, and why it is not ready.
func nodeReady(n *corev1.Node) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return true, ""
		}
		why := "Ready is " + string(c.Status)
		if c.Reason != "" {
			why += " (" + c.Reason + ")"
		}
		if c.Message != "" {
			why += ": " + c.Message
		}
		return false, why
	}
	return false, "no Ready condition reported"
}

// untolerated names the node's first NoSchedule or NoExecute taint that
// none of tols tolerates. The cordon and not-ready taints are left out:
// GPUNode says those facts by themselves.
func untolerated(n *corev1.Node, tols []corev1.Toleration) string {
	for i := range n.Spec.Taints {
		t := &n.Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule || t.Key == corev1.TaintNodeUnschedulable ||
			t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			continue
		}
		ok := false
		for j := range tols {
			if tols[j].ToleratesTaint(klog.Background(), t, false) {
				ok = true
				break
			}
		}
		if !ok {
			s := t.Key
			if t.Value != "" {
				s += "=" + t.Value
			}
			return s + ":" + string(t.Effect)
		}
	}
	return ""
}

// tolerations are the engine Pods' tolerations: nvidia.com/gpu's for a
// Pod with GPUs, then the configured ones.
func (k *Kube) tolerations(gpus bool) []corev1.Toleration {
	var out []corev1.Toleration
	if gpus {
		out = append(out, corev1.Toleration{Key: string(ResourceGPU), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	}
	for _, t := range k.opts.Tolerations {
		op := corev1.TolerationOpEqual
		if t.Operator == string(corev1.TolerationOpExists) {
			op = corev1.TolerationOpExists
		}
		out = append(out, corev1.Toleration{Key: t.Key, Operator: op, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	return out
}

// pinTo makes the Pod require the node placement chose, by node affinity
// on its kubernetes.io/hostname label, so the scheduler still checks the
// node and reports what stops the Pod there (unlike spec.nodeName, which
// bypasses it).
func (k *Kube) pinTo(pod *corev1.Pod, node string) {
	host := node
	if k.nodeWatch.started.Load() {
		if obj, ok, _ := k.nodeWatch.nodes.GetStore().GetByKey(node); ok {
			if n, ok := obj.(*corev1.Node); ok && n.Labels[LabelHostname] != "" {
				host = n.Labels[LabelHostname]
			}
		}
	}
	pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{host}}},
		}}},
	}}
}
