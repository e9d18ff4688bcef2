package kube

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Services that reach running on kwok: a fake node's Pods get loopback
// addresses (its PodCIDR, EnginePodNet), the daemon reaches engines at the
// Pod's IP (endpoint pod_ip), and ServeEngines serves a stand-in engine
// there (HTTP 200 with {} on every path) for every running Pod, as the
// engine in the Pod would answer.

// podNets numbers the loopback /24s handed out in this process.
var podNets atomic.Int32

// EnginePodNet returns a loopback /24 for a fake node's Pods, new on each
// call. Each test package passes its own first octet after 127 (77, 78,
// ...): `go test ./...` runs packages at once, and two processes serving
// one address would answer for each other's Pods.
func EnginePodNet(base int) string {
	n := int(podNets.Add(1))
	return fmt.Sprintf("127.%d.%d.0/24", base+n/250, 1+n%250)
}

// StandInEngine answers 200 with {} on every path, as a ready engine's
// health and metrics endpoints would be taken to.
var StandInEngine http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{}`))
})

// ServeEngines serves handler (nil: StandInEngine) at the IP of every
// running Pod of namespace ns, looking for new Pods every period, until
// the test ends.
func (c *Cluster) ServeEngines(t testing.TB, ns string, period time.Duration, handler http.Handler) {
	t.Helper()
	if handler == nil {
		handler = StandInEngine
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	open := map[string]*http.Server{} // by Pod IP
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err == nil {
				want := map[string]bool{}
				for _, p := range pods.Items {
					if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && strings.HasPrefix(p.Status.PodIP, "127.") {
						want[p.Status.PodIP] = true
					}
				}
				for ip, srv := range open {
					if !want[ip] {
						_ = srv.Close()
						delete(open, ip)
					}
				}
				for ip := range want {
					if open[ip] != nil {
						continue
					}
					ln, err := net.Listen("tcp", net.JoinHostPort(ip, "8000"))
					if err != nil {
						continue // tried again at the next tick
					}
					srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
					open[ip] = srv
					wg.Add(1)
					go func() {
						defer wg.Done()
						_ = srv.Serve(ln)
					}()
				}
			}
			select {
			case <-ctx.Done():
				for _, srv := range open {
					_ = srv.Close()
				}
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}
