package kubernetes_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/internal/testenv/kube"
	"aima/services"
)

// daemonOn runs an in-process daemon with runtime kubernetes on the test's
// namespace, its vllm asking for gpus GPUs with image image.
func (e env) daemonOn(t *testing.T, image, gpus string) *daemontest.Daemon {
	t.Helper()
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{
		Image: image, GPUs: gpus,
		Extra: fmt.Sprintf("runtime: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n"+
			"  tolerations: [{key: %s, operator: Equal, value: fake, effect: NoSchedule}]\n",
			e.c.Kubeconfig, e.ns, kube.FakeNodeAnnotation),
	})
	return daemontest.Start(t, cfg, daemontest.Options{})
}

// startAndFail starts a new service (with force: the schedule phase's fit
// check skipped) and waits for it to fail.
func startAndFail(t *testing.T, d *daemontest.Daemon, timeout time.Duration, force bool) (services.Service, []string) {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	m := d.Domain.Services
	s, err := m.Create(ctx, services.CreateSpec{ModelID: "org/name", EngineType: "vllm"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartWith(ctx, s.ID, services.StartOptions{Timeout: timeout, Force: force}); err != nil {
		t.Fatal(err)
	}
	s, err = m.Wait(ctx, s.ID, services.StatusFailed, time.Minute)
	if err != nil {
		t.Fatalf("wait for failed: %v\n%s", err, d.Logs.String())
	}
	_, evs, err := m.Events(ctx, s.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, ev := range evs {
		msgs = append(msgs, ev.Phase+": "+ev.Message)
	}
	return s, msgs
}

func TestServiceStartShowsTheSchedulersMessage(t *testing.T) {
	e := newEnv(t)
	node := e.node(t, 8)
	// A Pod that is not aima's takes every GPU of the node; a forced start
	// is pinned there anyway (placement's check skipped), and the
	// scheduler says why it cannot run.
	e.otherPod(t, node, 8)
	d := e.daemonOn(t, "aima-enginesim:test", "1")
	s, msgs := startAndFail(t, d, 5*time.Second, true)
	found := false
	for _, m := range msgs {
		found = found || (strings.HasPrefix(m, "start: unschedulable: ") && strings.Contains(m, "Insufficient nvidia.com/gpu"))
	}
	if !found {
		t.Errorf("no start-phase message with the scheduler's words in %q", msgs)
	}
	if s.Phase != services.PhaseStart || s.Failure != services.FailureUnschedulable || !strings.Contains(s.Reason, "Insufficient nvidia.com/gpu") {
		t.Errorf("failed as %s in phase %q: %q; want unschedulable in start (waiting for a node) with the scheduler's message", s.Failure, s.Phase, s.Reason)
	}
}

func TestServiceStartFailsOnAnImageTheNodeCannotPull(t *testing.T) {
	e := newEnv(t)
	e.node(t, 8)
	d := e.daemonOn(t, kube.ImageUnpullable, "1")
	s, msgs := startAndFail(t, d, time.Minute, false)
	if s.Failure != services.FailureImageUnavailable || !strings.Contains(s.Reason, "ErrImagePull") || !strings.Contains(s.Reason, "not found") {
		t.Errorf("failure %s, reason %q; want image_unavailable with the kubelet's ErrImagePull message", s.Failure, s.Reason)
	}
	found := false
	for _, m := range msgs {
		found = found || strings.HasPrefix(m, "start: scheduled: ")
	}
	if !found {
		t.Errorf("no scheduled message in %q", msgs)
	}
}
