package kube

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// FakeNodeAnnotation marks the nodes kwok plays the kubelet of (value
// "fake"); fake nodes also carry a NoSchedule taint of that key, so only
// Pods that tolerate it land there.
const FakeNodeAnnotation = "kwok.x-k8s.io/node"

// ImageUnpullable is an image kwok fails to "pull" (ErrImagePull with a
// registry's message), as a kubelet does for an image that does not exist.
const ImageUnpullable = "registry.invalid/aima/no-such-image:1"

// GPU Feature Discovery's node labels.
const (
	LabelGPUProduct = "nvidia.com/gpu.product"
	LabelGPUMemory  = "nvidia.com/gpu.memory" // MiB per GPU
	LabelGPUCount   = "nvidia.com/gpu.count"
)

// GPUNode describes a fake GPU node.
type GPUNode struct {
	Name    string
	GPUs    int
	Product string // e.g. NVIDIA-H100-80GB-HBM3
	MemMiB  int    // per GPU, e.g. 81559
	// PodCIDR, when set, is the node's Pod network: kwok gives its Pods
	// addresses from it (a loopback range such as 127.77.1.0/24 makes a
	// Pod's IP reachable from the test, which serves its engine there).
	PodCIDR string
	// Labels are added to the node's own (hostname, GPU Feature Discovery),
	// e.g. a pool label a test's daemons select with node_selector, so the
	// nodes of tests running beside it never take its Pods.
	Labels map[string]string
}

// AddGPUNode creates a fake node kwok keeps Ready, with allocatable
// nvidia.com/gpu and GFD labels, and waits until it is Ready. It is
// deleted when the test ends.
func (c *Cluster) AddGPUNode(t testing.TB, n GPUNode) *corev1.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("512Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	if n.GPUs > 0 {
		res["nvidia.com/gpu"] = *resource.NewQuantity(int64(n.GPUs), resource.DecimalSI)
	}
	labels := map[string]string{"kubernetes.io/hostname": n.Name, "type": "kwok"}
	if n.GPUs > 0 {
		labels[LabelGPUProduct] = n.Product
		labels[LabelGPUMemory] = strconv.Itoa(n.MemMiB)
		labels[LabelGPUCount] = strconv.Itoa(n.GPUs)
	}
	maps.Copy(labels, n.Labels)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: labels, Annotations: map[string]string{FakeNodeAnnotation: "fake"}},
		Spec:       corev1.NodeSpec{PodCIDR: n.PodCIDR, Taints: []corev1.Taint{{Key: FakeNodeAnnotation, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
		Status:     corev1.NodeStatus{Capacity: res, Allocatable: res},
	}
	created, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", n.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete node %s: %v", n.Name, err)
		}
	})
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		// Ready, and the not-ready taint that admission puts on every new
		// node lifted by the node lifecycle controller: until then the
		// scheduler reports the taint instead of what a test asks about.
		for _, taint := range got.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady || taint.Key == corev1.TaintNodeUnreachable {
				return false, nil
			}
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				created = got
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("node %s not Ready: %v\nkwok:\n%s", n.Name, err, c.Logs("kwok", 20))
	}
	return created
}

// FakeNodeToleration is the toleration Pods need to land on fake nodes.
var FakeNodeToleration = corev1.Toleration{Key: FakeNodeAnnotation, Operator: corev1.TolerationOpEqual, Value: "fake", Effect: corev1.TaintEffectNoSchedule}

// Namespace creates a namespace of its own for the test, waits for its
// default service account (Pods are refused without it), and deletes it
// when the test ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "t-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + strconv.FormatInt(time.Now().UnixNano()%100000, 10)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: no default service account: %v\nkube-controller-manager:\n%s", name, err, c.Logs("kube-controller-manager", 20))
	}
	return name
}

// writeStages writes kwok's stage definitions: the node stages shipped
// with kwok (kept by kube-build.sh) and aima's own Pod stages.
func (c *Cluster) writeStages(bin string) (string, error) {
	files, err := filepath.Glob(filepath.Join(bin, "stages", "node-*.yaml"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("kwok node stages missing in %s/stages (rebuild with scripts/kube-build.sh)", bin)
	}
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		b.WriteString("---\n")
		b.Write(raw)
		b.WriteString("\n")
	}
	b.WriteString(podStages)
	fmt.Fprintf(&b, "---\nkind: ClusterLogs\napiVersion: kwok.x-k8s.io/v1alpha1\nmetadata: {name: aima-engine}\n"+
		"spec:\n  logs:\n  - containers: [engine]\n    logsFile: %q\n    follow: false\n", c.EngineLog())
	path := filepath.Join(c.Dir, "kwok-stages.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}
