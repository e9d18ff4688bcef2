package kubernetes_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/client"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/services"
	"aima/tools"
)

// A daemon that goes away while a start waits for a node leaves the Pod
// pending; the next daemon on the same store and cluster adopts that Pod
// (same run, same Pod, no second one) and the start resumes: once a node
// fits, the service runs.
func TestDaemonRestartMidStartAdoptsThePod(t *testing.T) {
	e := newEnv(t)
	e.otherPod(t, e.engineNode(t, "small", 8), 8) // the scheduler waits for its GPUs (see TestUnschedulableStartFailsAtItsDeadlineThenRestarts)
	e.serveEngines(t)
	cfg := e.engineConfig(t, "8", "")
	first := daemontest.Start(t, cfg, daemontest.Options{})
	ctx := ctxFor(t, 3*time.Minute)
	m := first.Domain.Services
	s, err := m.Create(ctx, services.CreateSpec{ModelID: "org/name", EngineType: "vllm"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartWith(ctx, s.ID, services.StartOptions{Timeout: 2 * time.Minute, Force: true}); err != nil {
		t.Fatal(err)
	}
	// Wait until the start waits for the scheduler.
	waiting := false
	for !waiting {
		_, evs, err := m.Events(ctx, s.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			waiting = waiting || (ev.Phase == string(services.PhaseStart) && strings.HasPrefix(ev.Message, "unschedulable: "))
		}
		if ctx.Err() != nil {
			t.Fatalf("the start never waited for a node\n%s", first.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	before, err := m.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	first.Stop()

	// The node gets room while no daemon runs.
	e.removeOtherPod(t)
	second := daemontest.Start(t, cfg, daemontest.Options{DataDir: first.DataDir})
	got, err := second.Domain.Services.Wait(ctx, s.ID, services.StatusRunning, 2*time.Minute)
	if err != nil {
		t.Fatalf("wait for running after the daemon restart: %v\n%s", err, second.Logs.String())
	}
	if got.Run != before.Run || got.ContainerID != before.ContainerID || got.ContainerID == "" || got.RestartCount != 0 {
		t.Errorf("resumed as run %d pod %q (restarts %d); want run %d pod %q adopted", got.Run, got.ContainerID, got.RestartCount, before.Run, before.ContainerID)
	}
	pods, err := e.c.Client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 {
		t.Errorf("pods after the restart: %d, %v; want the one adopted", len(pods.Items), err)
	}

	// Adopted while running: a third daemon finds it running and keeps it.
	second.Stop()
	third := daemontest.Start(t, cfg, daemontest.Options{DataDir: first.DataDir})
	kept, err := third.Domain.Services.Get(ctx, s.ID)
	if err != nil || kept.Status != services.StatusRunning || kept.ContainerID != before.ContainerID {
		t.Errorf("after a restart while running: %+v, %v; want running on pod %s", kept, err, before.ContainerID)
	}
}

// The same with an `aima start` process SIGKILLed while its start waits for
// a node: nothing of the daemon's shutdown runs, the store holds the start
// in phase start with its Pod, and the daemon started again on the same
// data dir resumes it on that Pod.
func TestDaemonKilledMidStartResumesOnThePod(t *testing.T) {
	e := newEnv(t)
	e.otherPod(t, e.engineNode(t, "small", 8), 8)
	e.serveEngines(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: e.engineConfig(t, "8", "")})
	ctx := ctxFor(t, 3*time.Minute)
	cl := client.New(d.URL())
	raw, err := cl.Call(ctx, "service_create", tools.ServiceCreateInput{ModelID: "org/name", EngineType: "vllm"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var s services.Service
	if err := client.Decode(raw, &s); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Call(ctx, "service_start", tools.ServiceStartInput{ServiceID: s.ID, TimeoutSeconds: 120, Force: true}, nil); err != nil {
		t.Fatal(err)
	}
	// Wait until the scheduler said no node fits the service's Pod.
	var pod string
	for pod == "" {
		pods, err := e.c.Client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonUnschedulable {
					pod = p.Name
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the start never waited for a node\n%s", d.Logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.Kill(t)

	e.removeOtherPod(t)
	d.Restart(t)
	raw, err = cl.Call(ctx, "service_wait", tools.ServiceWaitInput{ServiceID: s.ID, For: string(services.StatusRunning), TimeoutSeconds: 120}, nil)
	if err != nil {
		t.Fatalf("wait for running after the kill: %v", err)
	}
	var got services.Service
	if err := client.Decode(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != services.StatusRunning || got.ContainerID != pod || got.Run != 1 {
		t.Errorf("after the kill: %s on pod %q run %d; want running on pod %s, run 1", got.Status, got.ContainerID, got.Run, pod)
	}
}
