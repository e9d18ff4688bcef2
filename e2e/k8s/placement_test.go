package k8s

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
	"aima/runtime"
	"aima/runtime/kubernetes"
)

// TestKubeRealNodeBesideGPUNodes: kwok fake GPU nodes and the real node in
// one cluster, through the runtime. Pods asking for GPUs (from a runtime
// whose Pods tolerate the fake nodes' taint) are placed on the fake GPU
// nodes with room (never on the real node, which has none), each node's
// nvidia.com/gpu filled to its capacity, while an engine without GPUs (from
// a runtime without that toleration) runs for real on the real node and
// answers at its endpoint.
func TestKubeRealNodeBesideGPUNodes(t *testing.T) {
	img := testenv.EngineSimImage(t)
	c := kube.Shared(t)
	real := kube.SharedRealNode(t, img)
	ns := c.Namespace(t)
	gpuNodes := map[string]int{ns + "-a": 2, ns + "-b": 4}
	for name, gpus := range gpuNodes {
		c.AddGPUNode(t, kube.GPUNode{Name: name, GPUs: gpus, Product: "NVIDIA-H100-80GB-HBM3", MemMiB: 81559})
	}
	newRuntime := func(store string, tols ...kubernetes.Toleration) *kubernetes.Kube {
		k, err := kubernetes.New(kubernetes.Options{
			Kubeconfig: c.Kubeconfig, Namespace: ns, Endpoint: kubernetes.EndpointPodIP, StoreID: store, Tolerations: tols,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.Close() })
		return k
	}
	gpuRT := newRuntime("store-gpu", kubernetes.Toleration{Key: kube.FakeNodeToleration.Key, Operator: "Equal", Value: "fake", Effect: "NoSchedule"})
	cpuRT := newRuntime("store-cpu")
	ctx := t.Context()
	start := func(k *kubernetes.Kube, store, svc string, gpus int, env ...string) string {
		t.Helper()
		id, err := k.CreateContainer(ctx, runtime.ContainerSpec{
			Name: "aima-" + svc + "-r1", Image: img, Env: env, ContainerPort: 8000, HostPort: testenv.FreePort(t),
			GPUs: runtime.GPURequest{Count: gpus},
			Labels: map[string]string{runtime.LabelManaged: "true", runtime.LabelService: svc, runtime.LabelRun: "1",
				runtime.LabelStore: store, runtime.LabelEngine: "vllm"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.StartContainer(ctx, id); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		return id
	}
	// 2 + 4 GPUs: three Pods of two GPUs fill both nodes exactly.
	perNode := map[string]int{}
	for i := range 3 {
		id := start(gpuRT, "store-gpu", "gpu"+strconv.Itoa(i), 2)
		p := e2ePod(t, c, ns, id)
		if _, ok := gpuNodes[p.Spec.NodeName]; !ok {
			t.Fatalf("GPU pod %s on %q, want one of the fake GPU nodes", id, p.Spec.NodeName)
		}
		perNode[p.Spec.NodeName] += 2
	}
	for name, gpus := range gpuNodes {
		if perNode[name] != gpus {
			t.Errorf("node %s holds %d GPUs of Pods, want its %d", name, perNode[name], gpus)
		}
	}

	id := start(cpuRT, "store-cpu", "cpu", 0, "SIM_TIME_SCALE="+testenv.SimTimeScale, "SIM_MODEL_CHECK=off")
	if p := e2ePod(t, c, ns, id); p.Spec.NodeName != real.Name {
		t.Fatalf("engine without GPUs on %q, want the real node", p.Spec.NodeName)
	}
	st, err := cpuRT.InspectContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/health", st.HostPort)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the real node's engine never answered at %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
