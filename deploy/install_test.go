package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	helmkube "helm.sh/helm/v4/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
	"aima/runtime"
)

// install installs the chart as release r in ns with the Helm SDK (what
// `helm install` does), uninstalled when the test ends.
func install(t *testing.T, c *kube.Cluster, ns string, vals map[string]any) {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &c.Kubeconfig, &ns
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatal(err)
	}
	chrt, err := loader.Load(filepath.Join("helm", "aima"))
	if err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.Timeout = "r", ns, 5*time.Minute
	in.WaitStrategy = helmkube.HookOnlyStrategy // the test waits for what it needs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := in.RunWithContext(ctx, chrt, vals); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	t.Cleanup(func() {
		un := action.NewUninstall(cfg)
		un.Timeout, un.WaitStrategy = time.Minute, helmkube.HookOnlyStrategy
		if _, err := un.Run("r"); err != nil {
			t.Errorf("helm uninstall: %v", err)
		}
	})
}

// serviceEndpoint waits until the Service NAME has one ready endpoint (the
// leader: the other replicas are not Ready) on a Pod other than notPod,
// and returns its address, what kube-proxy would send the Service's
// traffic to, and its Pod's name.
func serviceEndpoint(t *testing.T, c *kube.Cluster, ns, name, notPod string) (addr, pod string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var ready, pods []string
		for _, s := range l.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready && len(s.Ports) > 0 && s.Ports[0].Port != nil && ep.TargetRef != nil {
					ready = append(ready, net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(*s.Ports[0].Port))))
					pods = append(pods, ep.TargetRef.Name)
				}
			}
		}
		if len(ready) == 1 && pods[0] != notPod {
			return ready[0], pods[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("Service %s has ready endpoints %v, want the leader's alone\n%s", name, ready, podsReport(t, c, ns))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// podsReport describes the release's Pods and the end of their logs, for
// failures.
func podsReport(t *testing.T, c *kube.Cluster, ns string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=aima"})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range l.Items {
		fmt.Fprintf(&b, "Pod %s on %q: %s %+v\n", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.ContainerStatuses)
		tail := int64(30)
		raw, err := c.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
		fmt.Fprintf(&b, "%s%v\n", raw, err)
	}
	return b.String()
}

// cli runs the aima binary against the daemon at addr with the token.
func cli(t *testing.T, bin, addr string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "AIMA_ADDR="+addr, "AIMA_TOKEN="+testToken)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("aima %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

const testToken = "s3cret"

// call sends one request with the token to the daemon at addr.
func call(t *testing.T, addr, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "application/json, text/event-stream")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// The chart installed into the test cluster with the Helm SDK runs aima
// as Pods on the real node, with the image `make image` builds, the
// chart's ServiceAccount and Role (so the Role is enough for all it
// does), and the store in the API server. The seed scenario (create,
// start --wait, logs, stop) runs through the Service's endpoint.
//
// The release runs with the chart's hostNetwork, for clusters whose Pods
// cannot reach their API server: KUBERNETES_SERVICE_HOST/PORT name the
// API server on the host's loopback (chart values hostNetwork and env),
// and one replica fits the node. TestChartReplicasLeaderPodKilled runs two
// replicas as Pods of the bridge.
func TestChartInstalledRunsTheScenario(t *testing.T) {
	sim, img := testenv.EngineSimImage(t), testenv.AimaImage(t)
	c := kube.Shared(t)
	node := kube.SharedRealNode(t, sim, img)
	c.InstallCRDs(t)
	ns := c.Namespace(t)
	api, err := url.Parse(c.Host)
	if err != nil {
		t.Fatal(err)
	}
	port := testenv.PortRange(t, 1)
	repo, tag, _ := strings.Cut(img, ":")
	install(t, c, ns, values(map[string]any{
		"image":       map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"replicas":    1,
		"hostNetwork": true,
		"port":        port,
		"env": []any{
			map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": api.Hostname()},
			map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": api.Port()},
		},
		"config": map[string]any{
			"kubernetes": map[string]any{"endpoint": "auto"},
			"engines": map[string]any{"vllm": map[string]any{"image": sim, "gpus": "none",
				// The model is a remote reference (org/name), which a real
				// engine downloads: the simulator takes it as it is.
				"env": map[string]any{"SIM_TIME_SCALE": testenv.SimTimeScale, "SIM_MODEL_CHECK": "off"}}},
		},
	}))
	addr, leader := serviceEndpoint(t, c, ns, "r-aima", "")
	t.Logf("the Service's endpoint: %s (Pod %s)", addr, leader)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s\nkubelet:\n%s", podsReport(t, c, ns), node.Logs("kubelet", 30))
		}
	})

	// The guard answers the Service's DNS names, and refuses others.
	for host, want := range map[string]int{"r-aima." + ns + ".svc": http.StatusOK, "r-aima." + ns + ".svc.cluster.local:9090": http.StatusOK, "evil.example": http.StatusForbidden} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/service/list", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		cancel()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d %s, want %d", host, resp.StatusCode, body, want)
		}
	}

	bin := testenv.BuildAima(t)
	var svc struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		ContainerID string `json:"container_id"`
	}
	if err := json.Unmarshal([]byte(cli(t, bin, addr, "service", "create", "--model-id", "org/name", "--engine-type", "vllm", "-o", "json")), &svc); err != nil || svc.ID == "" {
		t.Fatalf("service create: %v %+v", err, svc)
	}
	start := cli(t, bin, addr, "service", "start", svc.ID, "--wait", "--timeout", "180")
	// (The engine Pod's node is checked below: the Scheduled event can
	// come before the start's event watch.)
	// (The kubelet's Started event may come after the Pod's status says the
	// container runs, which ends the start step; the phases show it.)
	for _, want := range []string{"application startup complete", "health_check", "creating → running"} {
		if !strings.Contains(start, want) {
			t.Errorf("start progress lacks %q:\n%s", want, start)
		}
	}
	logs := cli(t, bin, addr, "service", "logs", svc.ID)
	if !strings.Contains(logs, "Application startup complete.") {
		t.Errorf("service logs:\n%s", logs)
	}
	st := cli(t, bin, addr, "service", "status", svc.ID, "-o", "json")
	if err := json.Unmarshal([]byte(st), &svc); err != nil || svc.Status != "running" {
		t.Fatalf("service status: %v %s", err, st)
	}
	// The other front-ends through the same endpoint: the dashboard,
	// Prometheus, MCP over HTTP and the /v1 gateway to the engine Pod.
	for _, r := range []struct{ method, path, body, want string }{
		{http.MethodGet, "/ui/", "", "<title>aima</title>"},
		{http.MethodGet, "/metrics", "", "aima_build_info"},
		{http.MethodPost, "/mcp", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, `"serverInfo"`},
		{http.MethodGet, "/v1/models", "", `"org/name"`},
		{http.MethodPost, "/v1/chat/completions", `{"model":"org/name","messages":[{"role":"user","content":"hi"}]}`, `"choices"`},
	} {
		code, body := call(t, addr, r.method, r.path, r.body)
		if code != http.StatusOK || !strings.Contains(body, r.want) {
			t.Errorf("%s %s: %d %.300s, want 200 with %s", r.method, r.path, code, body, r.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := c.Client.CoreV1().Pods(ns).Get(ctx, svc.ContainerID, metav1.GetOptions{})
	if err != nil || p.Spec.NodeName != node.Name || p.Labels[runtime.LabelService] != svc.ID {
		t.Fatalf("engine Pod %s: %v on %q labels %v", svc.ContainerID, err, p.Spec.NodeName, p.Labels)
	}

	// The leader's Pod deleted: its replacement leads with every record and
	// adopts the engine Pod (not started again).
	engineUID := p.UID
	deleted := time.Now()
	if err := c.Client.CoreV1().Pods(ns).Delete(ctx, leader, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	addr, leader = serviceEndpoint(t, c, ns, "r-aima", leader)
	t.Logf("the replacement Pod %s ready and serving %s after the leader's Pod was deleted", leader, time.Since(deleted).Round(time.Millisecond))
	if err := json.Unmarshal([]byte(cli(t, bin, addr, "service", "status", svc.ID, "-o", "json")), &svc); err != nil || svc.Status != "running" {
		t.Fatalf("after the takeover: %v %+v, want running", err, svc)
	}
	l, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: runtime.LabelService + "=" + svc.ID})
	if err != nil || len(l.Items) != 1 || l.Items[0].UID != engineUID {
		t.Fatalf("after the takeover the service has Pods %v (%v), want the one it had (%s)", l, err, engineUID)
	}

	// A stop ends the engine and keeps its Pod (its log stays readable).
	cli(t, bin, addr, "service", "stop", svc.ID)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		l, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: runtime.LabelService + "=" + svc.ID})
		if err == nil && len(l.Items) == 1 && l.Items[0].Status.Phase == corev1.PodFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine Pod still runs after the stop: %v %v", err, l)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
