// Command localkube runs the tests' local Kubernetes cluster for a person:
// the control plane of internal/testenv/kube with its real node (a kubelet,
// a private containerd, runc and a CNI bridge on this host), the given
// Docker images imported into the node, and a namespace; then it runs the
// command after "--" with KUBECONFIG pointing at the cluster, and stops
// everything (leaving the host as it found it) when that command exits or
// localkube gets SIGINT or SIGTERM. `make demo-k8s` runs the aima daemon
// under it.
//
// usage: localkube [-image REF]... [-namespace NS] -- COMMAND [ARG]...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"aima/internal/testenv/kube"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var images list
	flag.Var(&images, "image", "Docker image to import into the node (repeatable)")
	ns := flag.String("namespace", "aima", "namespace to create for the engine Pods")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: localkube [-image REF]... [-namespace NS] -- COMMAND [ARG]...")
		os.Exit(2)
	}
	os.Exit(run(images, *ns, flag.Args()))
}

func run(images []string, ns string, argv []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "localkube: "+format+"\n", a...) }
	t0 := time.Now()
	logf("starting the control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kwok)")
	c, err := kube.Start(ctx)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer func() {
		t := time.Now()
		c.Stop()
		logf("cluster and node stopped in %s", time.Since(t).Round(time.Millisecond))
	}()
	logf("starting the real node %s (kubelet, containerd, runc, bridge %s)", kube.RealNodeName, kube.RealPodCIDR)
	n, err := c.AddRealNode(ctx, images...)
	if err != nil {
		logf("%v", err)
		return 1
	}
	if err := namespace(ctx, c, ns); err != nil {
		logf("namespace %s: %v", ns, err)
		return 1
	}
	logf("node %s Ready in %s; KUBECONFIG=%s; namespace %s", n.Name, time.Since(t0).Round(time.Millisecond), c.Kubeconfig, ns)

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
	if err := cmd.Start(); err != nil {
		logf("%v", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The command got the terminal's SIGINT too; give it time to
		// stop its services before the cluster goes.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

// namespace creates ns and waits for its default service account (Pods
// are refused without it).
func namespace(ctx context.Context, c *kube.Cluster, ns string) error {
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}
