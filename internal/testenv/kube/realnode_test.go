package kube_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
)

// hostSnapshot is what the real node may change on the host, to compare
// before its start and after its stop.
func hostSnapshot(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	// Only the lines that concern a kubelet or the node's network: Docker
	// tests running beside this one change the rest.
	run := func(key string, name string, args ...string) {
		b, _ := exec.Command(name, args...).CombinedOutput()
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "KUBE") || strings.Contains(l, "10.88.") || strings.Contains(l, "aima-real") || strings.Contains(l, "veth") && strings.Contains(l, "master aima") {
				keep = append(keep, l)
			}
		}
		out[key] = strings.Join(keep, "\n")
	}
	run("links", "ip", "-o", "link", "show")
	run("addrs", "ip", "-o", "-4", "addr", "show")
	run("iptables", "iptables", "-S")
	run("iptables-mangle", "iptables", "-t", "mangle", "-S")
	run("iptables-nat", "iptables", "-t", "nat", "-S")
	for _, s := range []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "net/ipv4/ip_forward"} {
		b, _ := os.ReadFile("/proc/sys/" + s)
		out[s] = string(b)
	}
	for _, d := range []string{"/var/lib/kubelet", "/var/lib/cni", "/var/log/containers", "/sys/fs/cgroup/memory/kubepods", "/sys/fs/cgroup/kubepods"} {
		_, err := os.Stat(d)
		out[d] = map[bool]string{true: "present", false: "absent"}[err == nil]
	}
	var shims, mounts int
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		mounts = strings.Count(string(b), "/aima-kube-") + strings.Count(string(b), "/run/aima-rn-")
	}
	ps, _ := exec.Command("pgrep", "-f", "containerd-shim.*aima-rn-").Output()
	shims = len(strings.Fields(string(ps)))
	out["mounts"] = strings.Repeat("m", mounts)
	out["shims"] = strings.Repeat("s", shims)
	return out
}

// TestRealNode starts a control plane and the real node, runs the engine
// simulator as a real Pod, reaches it at its IP and through the API
// server's proxy, and checks that the node's stop leaves the host as it
// was.
func TestRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local Kubernetes control plane and a real node; skipped in -short mode")
	}
	img := testenv.EngineSimImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c, err := kube.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	// The snapshot is taken under the host's real-node lock: another test
	// process's node may run until then.
	var before map[string]string
	t0 := time.Now()
	n, err := c.AddRealNodeWith(ctx, kube.RealNodeOptions{Images: []string{img}, Locked: func() { before = hostSnapshot(t) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("real node Ready, simulator image imported, in %s", time.Since(t0).Round(time.Millisecond))
	defer n.Stop()

	if err := n.Import(ctx, "aima-no-such-image:none"); err == nil || !strings.Contains(err.Error(), "docker save") {
		t.Errorf("import of a missing image: %v, want docker save's error", err)
	}

	ns := c.Namespace(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sim", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			DNSPolicy:     corev1.DNSDefault,
			Containers: []corev1.Container{{
				Name: "engine", Image: img, ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{{Name: "SIM_TIME_SCALE", Value: testenv.SimTimeScale}, {Name: "SIM_MODEL_CHECK", Value: "off"}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt(8000)}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
	t1 := time.Now()
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var ip string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "sim", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				ip = p.Status.PodIP
				return p.Spec.NodeName == n.Name, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("pod not Ready on %s: %v\nkubelet:\n%s", n.Name, err, n.Logs("kubelet", 30))
	}
	t.Logf("pod Ready at %s in %s", ip, time.Since(t1).Round(time.Millisecond))

	resp, err := http.Get("http://" + ip + ":8000/health")
	if err != nil {
		t.Fatalf("the host does not reach the pod at its IP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET pod IP /health: %d", resp.StatusCode)
	}
	if _, err := c.Client.CoreV1().Pods(ns).ProxyGet("http", "sim", "8000", "/health", nil).DoRaw(ctx); err != nil {
		t.Fatalf("the API server's pod proxy: %v", err)
	}
	rc, err := c.Client.CoreV1().Pods(ns).GetLogs("sim", &corev1.PodLogOptions{Container: "engine"}).Stream(ctx)
	if err != nil {
		t.Fatalf("pods/log: %v", err)
	}
	logs, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	rc.Close()
	if !strings.Contains(string(logs), "Application startup complete.") {
		t.Errorf("pods/log lacks the engine's start line:\n%s", logs)
	}

	// The node's Pods reach the API server at the bridge's address
	// (APIServer), and the serving certificate is valid there for the CA
	// Pods mount (kube-root-ca.crt).
	var ca string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ca = cm.Data["ca.crt"]
		return true, nil
	})
	if err != nil {
		t.Fatalf("kube-root-ca.crt: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		t.Fatalf("kube-root-ca.crt holds no certificate: %q", ca)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+n.APIServer+"/readyz", nil)
	req.Header.Set("Authorization", "Bearer "+kube.Token)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatalf("the API server at the node's address %s: %v", n.APIServer, err)
	}
	resp.Body.Close()
	hc.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(n.APIServer, kube.RealNodeIP+":") {
		t.Fatalf("GET https://%s/readyz: %d", n.APIServer, resp.StatusCode)
	}

	t2 := time.Now()
	n.Stop() // with the Pod still running: Stop removes it
	t.Logf("real node stopped in %s", time.Since(t2).Round(time.Millisecond))
	after := hostSnapshot(t)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("host %s changed by the real node:\nbefore: %q\nafter:  %q", k, v, after[k])
		}
	}
}
