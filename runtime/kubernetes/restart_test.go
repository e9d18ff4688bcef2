package kubernetes_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/internal/testenv/daemontest"
	"aima/services"
)

// A daemon that goes away while a start waits for a node leaves the Pod
// pending; the next daemon on the same store and cluster adopts that Pod
// (same run, same Pod, no second one) and the start resumes: once a node
// fits, the service runs.
func TestDaemonRestartMidStartAdoptsThePod(t *testing.T) {
	e := newEnv(t)
	e.engineNode(t, "small", 8)
	e.serveEngines(t)
	cfg := e.engineConfig(t, "16", "")
	first := daemontest.Start(t, cfg, daemontest.Options{})
	ctx := ctxFor(t, 3*time.Minute)
	m := first.Env.Services
	s, err := m.Create(ctx, services.CreateSpec{ModelID: "org/name", EngineType: "vllm"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartWith(ctx, s.ID, services.StartOptions{Timeout: 2 * time.Minute}); err != nil {
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

	// A node with room joins while no daemon runs.
	e.engineNode(t, "big", 16)
	second := daemontest.Start(t, cfg, daemontest.Options{DataDir: first.DataDir})
	got, err := second.Env.Services.Wait(ctx, s.ID, services.StatusRunning, 2*time.Minute)
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
	kept, err := third.Env.Services.Get(ctx, s.ID)
	if err != nil || kept.Status != services.StatusRunning || kept.ContainerID != before.ContainerID {
		t.Errorf("after a restart while running: %+v, %v; want running on pod %s", kept, err, before.ContainerID)
	}
}
