package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"aima/internal/testenv/kube"
)

// BenchmarkRequestsAtRest: two replicas (store kubernetes, leader
// election, endpoint pod_ip) reach the API server through a counting
// proxy; with 0 and then 6 services running (kwok Pods, the stand-in
// engine), the requests both make in 30 s at rest, as a rate a minute:
// the leader's Lease renewals and the follower's tries (one each per
// retry_period), and the watches' reopenings, none of it per service.
func BenchmarkRequestsAtRest(b *testing.B) {
	c := kube.Shared(b)
	rc := c.CountRequests(b)
	e := buildEnv(b, c, envOptions{engine: kube.StandInEngine, kubeconfig: rc.Kubeconfig})
	have := 0
	for _, n := range []int{0, 6} {
		for _, id := range e.startServices(b, e.a, n-have) {
			waitStatus(b, e.a, id, "running")
		}
		have = n
		time.Sleep(5 * time.Second) // the starts' requests are over
		const window = 30 * time.Second
		before := rc.Count()
		time.Sleep(window)
		perMin := float64(rc.Count()-before) * float64(time.Minute) / float64(window)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			for b.Loop() {
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(perMin, "api-requests/min")
		})
	}
}
