package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"aima/internal/filelock"
	"aima/internal/modroot"
	"aima/internal/testenv"
)

// The real node: a kubelet with a private containerd (Debian's, with its
// own config, root, state and socket, so Docker's containerd is untouched),
// runc, and a CNI bridge whose gateway address is the node's InternalIP.
// The host reaches its Pods at their IPs and through the API server's Pod
// proxy; the Pods reach each other (a FORWARD rule for the bridge) and the
// API server (APIServer). Only one can run on a host (the bridge and its address, the
// kubelet's port, /sys/fs/cgroup/*/kubepods): RealNodeLock guards it.
const (
	RealNodeName = "aima-real"
	RealNodeIP   = "10.88.0.1"    // the bridge's address (the kubelet refuses a loopback node IP)
	RealPodCIDR  = "10.88.0.0/16" // Pod IPs, on the bridge
	realBridge   = "aima-real0"
	pauseRef     = "docker.io/aima/pause:1"
	// RealNodeLock is held while a real node exists on this host.
	RealNodeLock = "/run/aima-real-node.lock"
)

// RealNodePackages are the Debian packages the real node needs.
var RealNodePackages = []string{"containerd", "runc", "containernetworking-plugins", "iproute2", "iptables"}

// cniBin is where Debian's containernetworking-plugins installs the plugins.
const cniBin = "/usr/lib/cni"

// RealNode is a running real node of a Cluster.
type RealNode struct {
	Name string
	IP   string
	// APIServer is host:port at which the node's Pods reach the API server:
	// the bridge's address, where the node forwards to the API server on
	// loopback (Pods cannot reach the host's loopback). The serving
	// certificate names that address; Pods set KUBERNETES_SERVICE_HOST and
	// KUBERNETES_SERVICE_PORT to it (there is no kube-proxy for the
	// kubernetes Service's ClusterIP).
	APIServer string

	c      *Cluster
	dir    string // config, logs, containerd's root, the kubelet's root
	state  string // containerd's state and socket (a short path: socket paths are bounded)
	sock   string
	unlock func()

	apiProxy *testenv.SockProxy

	mu       sync.Mutex
	procs    []*proc
	host     hostState
	stopped  bool
	imported map[string]bool
}

// AddRealNode starts the real node on the cluster, imports images (Docker
// image refs, e.g. the simulator's) into its containerd, and waits until
// the node is Ready and schedulable. It waits for RealNodeLock while
// another real node runs on the host. The caller must Stop it (Cluster.Stop
// also does).
func (c *Cluster) AddRealNode(ctx context.Context, images ...string) (*RealNode, error) {
	return c.AddRealNodeWith(ctx, RealNodeOptions{Images: images})
}

// RealNodeOptions configure AddRealNodeWith.
type RealNodeOptions struct {
	// Images are Docker image refs imported into the node's containerd.
	Images []string
	// Locked runs once RealNodeLock is held, before the node changes
	// anything on the host (a test takes its snapshot of the host there).
	Locked func()
}

// AddRealNodeWith is AddRealNode with options.
func (c *Cluster) AddRealNodeWith(ctx context.Context, opts RealNodeOptions) (*RealNode, error) {
	images := opts.Images
	if missing := missingNodeTools(); len(missing) > 0 {
		return nil, fmt.Errorf("the real node needs %s (Debian: apt-get install %s)", strings.Join(missing, ", "), strings.Join(RealNodePackages, " "))
	}
	if os.Getuid() != 0 {
		return nil, errors.New("the real node needs root (containerd, mounts, a bridge)")
	}
	bin, err := Binaries(ctx)
	if err != nil {
		return nil, err
	}
	unlock, err := lockWait(ctx, RealNodeLock)
	if err != nil {
		return nil, fmt.Errorf("real node lock %s: %w", RealNodeLock, err)
	}
	cleanLeftovers()
	if opts.Locked != nil {
		opts.Locked()
	}
	n := &RealNode{Name: RealNodeName, IP: RealNodeIP, c: c, dir: filepath.Join(c.Dir, "realnode"), unlock: unlock}
	n.state, err = os.MkdirTemp("/run", "aima-rn-")
	if err == nil {
		err = os.MkdirAll(n.dir, 0o755)
	}
	if err != nil {
		unlock()
		return nil, err
	}
	n.sock = filepath.Join(n.state, "containerd.sock")
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	if err := n.start(ctx, bin); err != nil {
		log := n.tail()
		n.Stop()
		return nil, fmt.Errorf("real node: %w\n%s", err, log)
	}
	if err := n.Import(ctx, images...); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

func missingNodeTools() []string {
	var out []string
	for _, b := range []string{"containerd", "ctr", "runc", "ip", "iptables"} {
		if _, err := exec.LookPath(b); err != nil {
			out = append(out, b)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBin, p)); err != nil {
			out = append(out, filepath.Join(cniBin, p))
		}
	}
	return out
}

// lockWait takes the file lock, retrying until ctx ends.
func lockWait(ctx context.Context, path string) (func(), error) {
	for {
		unlock, ok, err := filelock.TryLock(path)
		if err != nil {
			return nil, err
		}
		if ok {
			return unlock, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("another real node holds it: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (n *RealNode) start(ctx context.Context, bin string) error {
	var err error
	if n.host, err = saveHostState(); err != nil {
		return err
	}
	if err := n.host.addBridge(); err != nil {
		return err
	}
	if err := n.forwardAPIServer(); err != nil {
		return err
	}
	pauseTar, err := n.pauseImage(ctx)
	if err != nil {
		return err
	}
	if err := n.writeContainerdConfig(); err != nil {
		return err
	}
	if err := n.run("/usr/bin/containerd", "containerd", "--config", filepath.Join(n.dir, "containerd.toml")); err != nil {
		return err
	}
	if err := n.until(ctx, 30*time.Second, "containerd", func() bool { return n.ctr(ctx, "version") == nil }); err != nil {
		return err
	}
	if err := n.ctr(ctx, "images", "import", pauseTar); err != nil {
		return err
	}
	if err := n.writeKubeletConfig(); err != nil {
		return err
	}
	if err := n.run(filepath.Join(bin, "kubelet"), "kubelet", "--config="+filepath.Join(n.dir, "kubelet.yaml"),
		"--kubeconfig="+n.c.Kubeconfig, "--root-dir="+filepath.Join(n.dir, "kubelet"),
		"--cert-dir="+filepath.Join(n.dir, "kubelet", "pki"), "--hostname-override="+n.Name,
		"--node-ip="+n.IP, "--node-labels=aima.test/real-node=true"); err != nil {
		return err
	}
	return n.until(ctx, 2*time.Minute, "node "+n.Name+" Ready", func() bool {
		node, err := n.c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		return err == nil && nodeReady(node)
	})
}

// forwardAPIServer listens on the bridge's address, at the API server's
// port, and forwards each connection to the API server on loopback
// (APIServer).
func (n *RealNode) forwardAPIServer() error {
	u, err := url.Parse(n.c.Host)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(n.IP, u.Port())
	p, err := testenv.ListenProxy("tcp", addr, "tcp", u.Host)
	if err != nil {
		return fmt.Errorf("forward the API server to the node's Pods: %w", err)
	}
	n.apiProxy, n.APIServer = p, addr
	return nil
}

// nodeReady: Ready, and the not-ready taint admission puts on a new node
// lifted (until then the scheduler does not place Pods there).
func nodeReady(node *corev1.Node) bool {
	for _, taint := range node.Spec.Taints {
		if taint.Key == corev1.TaintNodeNotReady || taint.Key == corev1.TaintNodeUnreachable {
			return false
		}
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// until polls ok every 200 ms until it holds, a component exits, or
// timeout passes.
func (n *RealNode) until(ctx context.Context, timeout time.Duration, what string, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		if ok() {
			return true, nil
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, p := range n.procs {
			select {
			case <-p.done:
				return false, fmt.Errorf("%s exited while waiting for %s", p.name, what)
			default:
			}
		}
		return false, nil
	})
}

func (n *RealNode) run(path, name string, args ...string) error {
	p, err := spawn(n.dir, path, name, args...)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	return nil
}

// ctr runs containerd's CLI on the node's containerd, in the CRI's namespace.
func (n *RealNode) ctr(ctx context.Context, args ...string) error {
	_, err := n.ctrOut(ctx, nil, args...)
	return err
}

func (n *RealNode) ctrOut(ctx context.Context, stdin *exec.Cmd, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"-a", n.sock, "-n", "k8s.io"}, args...)...)
	var out, stderr, inErr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	var pipe io.ReadCloser
	if stdin != nil {
		var err error
		if pipe, err = stdin.StdoutPipe(); err != nil {
			return "", err
		}
		stdin.Stderr = &inErr
		cmd.Stdin = pipe
		if err := stdin.Start(); err != nil {
			return "", err
		}
	}
	err := cmd.Run()
	if stdin != nil {
		// Closing the read end ends a writer that ctr left blocked.
		_ = pipe.Close()
		// The writer's failure is the cause of ctr's, if both failed.
		if werr := stdin.Wait(); werr != nil {
			return "", fmt.Errorf("%s: %v: %s", strings.Join(stdin.Args, " "), werr, strings.TrimSpace(inErr.String()))
		}
	}
	if err != nil {
		return "", fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// KillContainer kills a container of one of the node's Pods with SIGKILL
// (its containerd task), as a crash would; id is the Pod status's
// containerID (containerd://ID) or the bare ID. The kubelet sees it end
// and restarts it under the Pod's restart policy.
func (n *RealNode) KillContainer(ctx context.Context, id string) error {
	return n.ctr(ctx, "tasks", "kill", "-s", "SIGKILL", strings.TrimPrefix(id, "containerd://"))
}

// Import copies Docker images into the node's containerd (`docker save |
// ctr images import`): no registry is reachable, so Pods run them as
// already present on the node.
func (n *RealNode) Import(ctx context.Context, images ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.imported == nil {
		n.imported = map[string]bool{}
	}
	for _, ref := range images {
		if n.imported[ref] {
			continue
		}
		save := exec.CommandContext(ctx, "docker", "save", ref)
		if _, err := n.ctrOut(ctx, save, "images", "import", "-"); err != nil {
			return fmt.Errorf("import %s into the real node: %w", ref, err)
		}
		n.imported[ref] = true
	}
	return nil
}

// pauseImage builds the sandbox program (./pause) and packs it into an OCI
// archive named pauseRef.
func (n *RealNode) pauseImage(ctx context.Context) (string, error) {
	root, err := modroot.Find()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(n.dir, "pause")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./internal/testenv/kube/pause")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the pause program: %v\n%s", err, out)
	}
	out := filepath.Join(n.dir, "pause.tar")
	return out, writeOCIArchive(out, pauseRef, bin, []string{"/pause"})
}

// tail is the end of the kubelet's and containerd's logs, for failures.
func (n *RealNode) tail() string {
	var b strings.Builder
	for _, name := range []string{"containerd", "kubelet"} {
		fmt.Fprintf(&b, "--- %s:\n%s\n", name, tailFile(filepath.Join(n.dir, name+".log"), 15))
	}
	return b.String()
}

// Logs returns the last lines of the kubelet's or containerd's log.
func (n *RealNode) Logs(name string, lines int) string {
	return tailFile(filepath.Join(n.dir, name+".log"), lines)
}

var (
	sharedNodeMu  sync.Mutex
	sharedNode    *RealNode
	sharedNodeErr error
)

// SharedRealNode returns the test process's real node on the shared
// cluster (Shared), started at the first call with the images imported;
// StopShared stops it. Later calls import images not imported yet. A node
// that cannot start fails the test; `go test -short` skips it.
func SharedRealNode(t testing.TB, images ...string) *RealNode {
	t.Helper()
	c := Shared(t)
	sharedNodeMu.Lock()
	defer sharedNodeMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	if sharedNode == nil && sharedNodeErr == nil {
		sharedNode, sharedNodeErr = c.AddRealNode(ctx)
	}
	if sharedNodeErr != nil {
		t.Fatalf("real Kubernetes node: %v", sharedNodeErr)
	}
	if err := sharedNode.Import(ctx, images...); err != nil {
		t.Fatal(err)
	}
	return sharedNode
}
