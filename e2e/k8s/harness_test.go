// Package k8s holds aima's end-to-end tests on Kubernetes: the built aima
// binary with `runtime: kubernetes`, on the local control plane of
// internal/testenv/kube with its real node (a kubelet, containerd, runc and
// a CNI bridge on this host) running the engine simulator as real Pods.
// They fail (not skip) when the cluster or the node cannot start; `go test
// -short` skips them.
package k8s

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kube.StopShared()
	os.Exit(code)
}

// memLimitMiB is the engines' memory limit in these tests: the simulator
// runs in a few MiB; SIM_HOST_MEM above it gets it OOM-killed.
const memLimitMiB = 96

// kenv is one test's daemon on the real node, in a namespace of its own.
type kenv struct {
	c       *kube.Cluster
	node    *kube.RealNode
	ns      string
	d       *testenv.DaemonProc
	modelID string
}

// setup starts `aima start` with runtime: kubernetes on the shared
// cluster's real node, reaching engines by endpoint (pod_ip or proxy), and
// registers a model (a directory on this host: the node's hostPath).
func setup(t testing.TB, endpoint string) *kenv {
	t.Helper()
	img := testenv.EngineSimImage(t)
	c := kube.Shared(t)
	n := kube.SharedRealNode(t, img)
	ns := c.Namespace(t)
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{
		Image: img, MemoryLimitMiB: memLimitMiB,
		Extra: fmt.Sprintf("runtime: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n  endpoint: %s\n", c.Kubeconfig, ns, endpoint),
	})
	e := &kenv{c: c, node: n, ns: ns, d: testenv.StartDaemon(t, testenv.DaemonOptions{Config: cfg})}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet:\n%s", n.Logs("kubelet", 30))
		}
	})
	out := e.d.MustCLI(t, "model", "add", "--path", testenv.MakeModel(t, "qwen-k8s"), "-o", "json")
	e.modelID = testenv.DecodeJSON[struct {
		ID string `json:"id"`
	}](t, out.Stdout).ID
	if e.modelID == "" {
		t.Fatalf("model add: %s", out.Stdout)
	}
	return e
}

type svcJSON struct {
	ID          string   `json:"id"`
	Status      string   `json:"status"`
	Phase       string   `json:"phase"`
	Reason      string   `json:"reason"`
	Failure     string   `json:"failure"`
	ExitCode    *int     `json:"exit_code"`
	OOMKilled   bool     `json:"oom_killed"`
	ContainerID string   `json:"container_id"`
	Port        int      `json:"port"`
	Endpoint    string   `json:"endpoint"`
	Run         int      `json:"run"`
	LogTail     []string `json:"log_tail"`
}

// create makes a vllm service of the model with env (SIM_TIME_SCALE is the
// tests' fast one unless env sets it) and returns its ID.
func (e *kenv) create(t *testing.T, env map[string]string, extra ...string) string {
	t.Helper()
	args := []string{"service", "create", "--model-id", e.modelID, "--engine-type", "vllm", "-o", "json"}
	for k, v := range env {
		args = append(args, "--env", k+"="+v)
	}
	s := testenv.DecodeJSON[svcJSON](t, e.d.MustCLI(t, append(args, extra...)...).Stdout)
	if s.ID == "" || s.Status != "created" {
		t.Fatalf("service create: %+v", s)
	}
	return s.ID
}

func (e *kenv) status(t *testing.T, id string) svcJSON {
	t.Helper()
	return testenv.DecodeJSON[svcJSON](t, e.d.MustCLI(t, "service", "status", id, "-o", "json").Stdout)
}

// pod reads a run's Pod (its name is the service's container ID).
func (e *kenv) pod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	return e2ePod(t, e.c, e.ns, name)
}

// phases returns the `==> phase` lines of a start's progress, in order.
func phases(progress string) []string {
	var seen []string
	for _, line := range strings.Split(progress, "\n") {
		if f := strings.Fields(strings.TrimPrefix(line, "==> ")); strings.HasPrefix(line, "==> ") && len(f) > 0 {
			seen = append(seen, f[0])
		}
	}
	return seen
}

// inOrder reports whether want appears in seen in order (other phases
// between them allowed).
func inOrder(seen []string, want ...string) bool {
	i := 0
	for _, p := range seen {
		if i < len(want) && p == want[i] {
			i++
		}
	}
	return i == len(want)
}

// e2ePod reads a Pod of the namespace.
func e2ePod(t testing.TB, c *kube.Cluster, ns, name string) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := c.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod %s: %v", name, err)
	}
	return p
}
