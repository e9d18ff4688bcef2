// Package kube starts a real Kubernetes control plane on loopback for
// aima's tests: etcd, kube-apiserver, kube-scheduler and
// kube-controller-manager built from the Go module proxy by
// scripts/kube-build.sh (cached by version under ~/.cache/aima-kube), and
// kwok, which plays the kubelet of fake nodes: it drives Pods bound to them
// through Running and Ready, fails the pull of ImageUnpullable, and deletes
// Pods being deleted. Fake GPU nodes (AddGPUNode) carry the labels of
// NVIDIA's GPU Feature Discovery and allocatable nvidia.com/gpu, so the
// real scheduler places GPU Pods on them.
//
// Everything runs on random free loopback ports with its state in a
// temporary directory, and is stopped by Stop (children also die with the
// test process). Tests that need the cluster fail, not skip, when it cannot
// be built or started; only `go test -short` skips them.
package kube

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"aima/internal/modroot"
)

// Token is the static bearer token of the cluster's admin (system:masters).
const Token = "aima-test-admin"

// LimitedToken authenticates a user with no permissions at all (RBAC is
// on), for tests of what aima reports when it lacks them.
const LimitedToken = "aima-test-nobody"

// Cluster is a running control plane.
type Cluster struct {
	Dir        string // state, logs and the kubeconfig
	Kubeconfig string // admin kubeconfig file
	Host       string // https://127.0.0.1:PORT
	Rest       *rest.Config
	Client     k8s.Interface

	mu      sync.Mutex
	procs   []*proc
	stopped map[string]*proc // StopComponent's, until StartComponent
	nodes   []*RealNode      // AddRealNode's, stopped before the control plane
}

type proc struct {
	name string
	path string
	args []string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	// started is the component's place in the order of start.
	started int
}

// Binaries returns the directory holding the cluster's binaries, building
// them first (minutes, once per machine) with scripts/kube-build.sh.
func Binaries(ctx context.Context) (string, error) {
	root, err := modroot.Find()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "kube-build.sh"))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("scripts/kube-build.sh: %v\n%s", err, lastLines(stderr.String(), 20))
	}
	return strings.TrimSpace(out.String()), nil
}

// Start starts etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok and waits until the API server is ready. The
// caller must Stop it.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := Binaries(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "aima-kube-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir}
	if err := c.start(ctx, bin); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, bin string) error {
	pki := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	if err := writeServiceAccountKey(pki); err != nil {
		return err
	}
	if err := writeServingCert(pki); err != nil {
		return err
	}
	tokens := fmt.Sprintf("%s,admin,admin,system:masters\n%s,nobody,nobody\n", Token, LimitedToken)
	if err := os.WriteFile(filepath.Join(pki, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return err
	}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.Host = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, []byte(Kubeconfig(c.Host, Token)), 0o600); err != nil {
		return err
	}
	if err := c.run(bin, "etcd", "--name=default", "--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--unsafe-no-fsync"); err != nil {
		return err
	}
	if err := c.run(bin, "kube-apiserver", "--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[2]),
		"--tls-cert-file="+filepath.Join(pki, "apiserver.crt"), "--tls-private-key-file="+filepath.Join(pki, "apiserver.key"),
		"--endpoint-reconciler-type=none", "--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--token-auth-file="+filepath.Join(pki, "tokens.csv"), "--authorization-mode=RBAC",
		"--kubelet-preferred-address-types=InternalIP"); err != nil {
		return err
	}
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	kc := "--kubeconfig=" + c.Kubeconfig
	if err := c.run(bin, "kube-controller-manager", kc, "--authentication-kubeconfig="+c.Kubeconfig,
		"--authorization-kubeconfig="+c.Kubeconfig, "--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false", "--use-service-account-credentials=false",
		"--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--root-ca-file="+filepath.Join(pki, "apiserver.crt"),
		"--flex-volume-plugin-dir="+filepath.Join(c.Dir, "flex"),
		// It needs a CA signer this cluster does not have.
		"--controllers=*,-kube-apiserver-serving-clustertrustbundle-publisher-controller"); err != nil {
		return err
	}
	if err := c.run(bin, "kube-scheduler", kc, "--authentication-kubeconfig="+c.Kubeconfig,
		"--authorization-kubeconfig="+c.Kubeconfig, "--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false"); err != nil {
		return err
	}
	stages, err := c.writeStages(bin)
	if err != nil {
		return err
	}
	// kwok serves pods/log of fake Pods from EngineLog (through the API
	// server, which reaches it as the fake nodes' kubelet).
	if err := WriteCRILog(c.EngineLog(), time.Now(), "engine log line 1", "engine log line 2", "engine log line 3"); err != nil {
		return err
	}
	return c.run(bin, "kwok", kc, "--manage-nodes-with-annotation-selector="+FakeNodeAnnotation+"=fake",
		"--config="+stages, "--cidr=10.89.0.0/16", "--node-lease-duration-seconds=40",
		"--node-ip=127.0.0.1", "--node-port="+strconv.Itoa(ports[3]),
		"--server-address=127.0.0.1:"+strconv.Itoa(ports[3]))
}

// Kubeconfig is a kubeconfig for host with a bearer token.
func Kubeconfig(host, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: aima-test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: user, user: {token: %q}}]
contexts: [{name: aima-test, context: {cluster: aima-test, user: user}}]
current-context: aima-test
`, host, token)
}

// run starts one component with its output in DIR/NAME.log; it dies with
// the test process (Pdeathsig) if Stop never runs.
func (c *Cluster) run(bin, name string, args ...string) error {
	p, err := spawn(c.Dir, filepath.Join(bin, name), name, args...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	p.started = len(c.procs) + len(c.stopped)
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return nil
}

// spawn starts path as the component name in dir, its output appended to
// DIR/NAME.log; it dies with the test process (Pdeathsig).
func spawn(dir, path, name string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, path: path, args: args, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// waitReady waits until the API server is ready (pollReady) and makes the
// cluster's clients.
func (c *Cluster) waitReady(ctx context.Context) error {
	if err := c.pollReady(ctx); err != nil {
		return err
	}
	cfg := &rest.Config{Host: c.Host, BearerToken: Token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 100, Burst: 200}
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.Rest, c.Client = cfg, cs
	return nil
}

// pollReady polls /readyz until the API server answers 200, a component
// exits, or a minute passes.
func (c *Cluster) pollReady(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+Token)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if p := c.exited(); p != nil {
			return fmt.Errorf("%s exited while the API server started:\n%s", p.name, tailFile(p.log, 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready: %w\n%s", ctx.Err(), tailFile(filepath.Join(c.Dir, "kube-apiserver.log"), 20))
		case <-tick.C:
		}
	}
	return nil
}

// stop ends the process: SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Stopping and starting components, for tests of what aima does when the
// control plane goes away and comes back: StopComponent ends one (as Stop
// does) and StartComponent starts it again with the same flags, state and
// port. Both are for a cluster of the test's own (Start), not Shared.

// Component names.
const (
	Etcd      = "etcd"
	APIServer = "kube-apiserver"
)

// StopComponent stops the running component name (SIGTERM, then SIGKILL
// after 10 s).
func (c *Cluster) StopComponent(name string) error {
	c.mu.Lock()
	var p *proc
	for i, q := range c.procs {
		if q.name == name {
			p = q
			c.procs = append(c.procs[:i:i], c.procs[i+1:]...)
			break
		}
	}
	if p != nil {
		if c.stopped == nil {
			c.stopped = map[string]*proc{}
		}
		c.stopped[name] = p
	}
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no running component %q", name)
	}
	p.stop()
	return nil
}

// StartComponent starts the stopped component name again; for the API
// server it waits until it is ready. Clients made before (c.Rest,
// c.Client) keep working: the address and credentials are the same.
func (c *Cluster) StartComponent(ctx context.Context, name string) error {
	c.mu.Lock()
	old := c.stopped[name]
	delete(c.stopped, name)
	c.mu.Unlock()
	if old == nil {
		return fmt.Errorf("component %q was not stopped", name)
	}
	p, err := spawn(c.Dir, old.path, name, old.args...)
	if err != nil {
		return err
	}
	// Components are stopped newest first; keep the order of start.
	c.mu.Lock()
	i := len(c.procs)
	for j, q := range c.procs {
		if q.started > old.started {
			i = j
			break
		}
	}
	p.started = old.started
	c.procs = slices.Insert(c.procs, i, p)
	c.mu.Unlock()
	if name == APIServer {
		return c.pollReady(ctx)
	}
	return nil
}

// RestartAPIServer stops the API server and starts it again (etcd and
// the data in it are kept) and returns once it is ready.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	if err := c.StopComponent(APIServer); err != nil {
		return err
	}
	return c.StartComponent(ctx, APIServer)
}

func (c *Cluster) exited() *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		select {
		case <-p.done:
			return p
		default:
		}
	}
	return nil
}

// Stop stops the real nodes (RealNode.Stop), then every component
// (SIGTERM, then SIGKILL after 10 s), newest first, and removes the state
// directory.
func (c *Cluster) Stop() {
	c.mu.Lock()
	procs, nodes := c.procs, c.nodes
	c.procs, c.nodes = nil, nil
	c.mu.Unlock()
	for _, n := range nodes {
		n.Stop()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	if os.Getenv("AIMA_KUBE_KEEP") == "" {
		_ = os.RemoveAll(c.Dir)
	}
}

// EngineLog is the file kwok serves as the log of every fake Pod's engine
// container, in the CRI log format (WriteCRILog).
func (c *Cluster) EngineLog() string { return filepath.Join(c.Dir, "engine.log") }

// WriteCRILog writes lines to path in the kubelet's CRI log format, one
// stdout line per entry, a millisecond apart from t.
func WriteCRILog(path string, t time.Time, lines ...string) error {
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, "%s stdout F %s\n", t.Add(time.Duration(i)*time.Millisecond).UTC().Format(time.RFC3339Nano), l)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// Logs returns the last lines of a component's log (for failure messages).
func (c *Cluster) Logs(name string, n int) string {
	return tailFile(filepath.Join(c.Dir, name+".log"), n)
}

func writeServiceAccountKey(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), priv, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pub, 0o600)
}

// writeServingCert writes the API server's self-signed serving certificate
// (apiserver.crt, also the cluster's root CA: kube-root-ca.crt, which Pods
// verify the API server with) and its key. Its names are loopback, the real
// node's bridge address (where RealNode forwards to the API server, for its
// Pods), the kubernetes Service's IP and DNS names, and localhost.
func writeServingCert(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "aima-test-apiserver"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP(RealNodeIP), net.ParseIP(serviceIP)},
		DNSNames:              []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(filepath.Join(dir, "apiserver.key"), priv, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "apiserver.crt"), crt, 0o644)
}

// serviceIP is the kubernetes Service's ClusterIP (the first of
// --service-cluster-ip-range).
const serviceIP = "10.0.0.1"

// freePorts returns n distinct loopback ports free now.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var (
	sharedMu  sync.Mutex
	shared    *Cluster
	sharedErr error
)

// Shared returns the test process's cluster, started at the first call
// (building the binaries first if needed). The package's TestMain stops it
// with StopShared. In -short mode the test is skipped; otherwise a cluster
// that cannot be built or started fails it.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local Kubernetes control plane; skipped in -short mode")
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
		shared, sharedErr = Start(ctx)
		cancel()
	}
	if sharedErr != nil {
		t.Fatalf("local Kubernetes control plane: %v\nIt is built by scripts/kube-build.sh (Go module proxy); `go test -short` skips such tests.", sharedErr)
	}
	return shared
}

// Own starts a cluster of the test's own, stopped when the test ends: for
// tests that stop or restart its components (StopComponent,
// RestartAPIServer), which must not disturb the tests on the shared one.
// In -short mode the test is skipped.
func Own(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local Kubernetes control plane; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	c, err := Start(ctx)
	if err != nil {
		t.Fatalf("local Kubernetes control plane: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// StopShared stops the shared cluster, if one was started.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
	sharedNodeMu.Lock()
	sharedNode, sharedNodeErr = nil, nil
	sharedNodeMu.Unlock()
}
