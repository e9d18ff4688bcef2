package kubernetes_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"aima/internal/testenv/daemontest"
	"aima/internal/testenv/kube"
	"aima/services"
)

// annotate puts an annotation on a Pod, for kwok's stages to act on.
func (e env) annotate(t *testing.T, ctx context.Context, pod string, kv map[string]string) {
	t.Helper()
	var parts []string
	for k, v := range kv {
		parts = append(parts, `"`+k+`":"`+v+`"`)
	}
	patch := []byte(`{"metadata":{"annotations":{` + strings.Join(parts, ",") + `}}}`)
	if _, err := e.c.Client.CoreV1().Pods(e.ns).Patch(ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A running service whose Pod ends, the way the cluster ends it, becomes
// failed with a typed kind and the cluster's reason (record and event),
// and the restart policy starts it again, as on Docker.
func TestServiceFailsWhenItsPodEnds(t *testing.T) {
	cases := []struct {
		name string
		end  func(t *testing.T, ctx context.Context, e env, pod, spare string)
		kind services.FailureKind
		want string // in the reason
		code int    // exit code, -1: none
	}{
		{"exit code", func(t *testing.T, ctx context.Context, e env, pod, _ string) {
			e.annotate(t, ctx, pod, map[string]string{kube.AnnotationExitCode: "3"})
		}, services.FailureExited, "container exited with code 3 while running", 3},
		{"oom killed", func(t *testing.T, ctx context.Context, e env, pod, _ string) {
			e.annotate(t, ctx, pod, map[string]string{kube.AnnotationExitCode: "137", kube.AnnotationExitReason: "OOMKilled"})
		}, services.FailureOOM, "(OOM killed)", 137},
		{"evicted", func(t *testing.T, ctx context.Context, e env, pod, _ string) {
			e.annotate(t, ctx, pod, map[string]string{kube.AnnotationEvict: "The node was low on resource: memory."})
		}, services.FailureEvicted, "pod evicted by the cluster while running: The node was low on resource: memory.", -1},
		{"deleted", func(t *testing.T, ctx context.Context, e env, pod, _ string) {
			if err := e.c.Client.CoreV1().Pods(e.ns).Delete(ctx, pod, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
				t.Fatal(err)
			}
		}, services.FailureDisappeared, "pod deleted outside aima while running", -1},
		{"node lost", func(t *testing.T, ctx context.Context, e env, _, node string) {
			// The Pod garbage collector fails and deletes the Pods of a
			// node that no longer exists (after its 40 s quarantine).
			if err := e.c.Client.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, services.FailureNodeLost, "the pod's node was lost while running", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			first := e.engineNode(t, "a", 8)
			e.serveEngines(t)
			d := daemontest.Start(t, e.engineConfig(t, "1", ""), daemontest.Options{})
			ctx := ctxFor(t, 3*time.Minute)
			s := runningService(t, ctx, d)
			// Where the restart goes when the first node is lost.
			e.engineNode(t, "b", 8)
			tc.end(t, ctx, e, s.ContainerID, first)

			m := d.Domain.Services
			got, err := m.Wait(ctx, s.ID, services.StatusFailed, 2*time.Minute)
			if err != nil {
				t.Fatalf("wait for failed: %v\n%s", err, d.Logs.String())
			}
			if got.Failure != tc.kind || !strings.Contains(got.Reason, tc.want) {
				t.Errorf("failed as %s: %q; want %s with %q", got.Failure, got.Reason, tc.kind, tc.want)
			}
			switch {
			case tc.code < 0 && got.ExitCode != nil:
				t.Errorf("exit code %d; want none (the cluster ended the pod)", *got.ExitCode)
			case tc.code >= 0 && (got.ExitCode == nil || *got.ExitCode != tc.code):
				t.Errorf("exit code %v; want %d", got.ExitCode, tc.code)
			}
			if got.OOMKilled != (tc.kind == services.FailureOOM) {
				t.Errorf("oom_killed %v", got.OOMKilled)
			}
			if got.NextRestartAt == nil {
				t.Errorf("no restart planned by the on-failure policy")
			}
			// (running or unhealthy → failed: the liveness probe may see
			// the engine gone before the watch's event is handled)
			evs := failedEvents(t, ctx, d, s.ID)
			if len(evs) != 1 || !strings.HasPrefix(evs[0], string(tc.kind)+": ") || !strings.Contains(evs[0], tc.want) {
				t.Errorf("failed events %q; want one of kind %s with the reason", evs, tc.kind)
			}
			// The restart policy starts it again: a new run, a new Pod.
			again := e.runningAgain(t, ctx, d, s.ID, s.Run)
			if again.RestartCount != 1 || again.Run != s.Run+1 || again.ContainerID == s.ContainerID {
				t.Errorf("after the restart: restarts %d, run %d, pod %s; want 1, %d, a new pod", again.RestartCount, again.Run, again.ContainerID, s.Run+1)
			}
		})
	}
}

// A start whose Pod no node can take shows the scheduler's message as the
// phase's, fails at the start's deadline with kind unschedulable and that
// message, and the restart policy tries again: once the node has room, it
// runs. (aima's own placement refuses a start that fits no node before any
// Pod exists; a Pod that is not aima's holding the node's GPUs, and a forced
// start pinned there anyway, leave the waiting to the scheduler.)
func TestUnschedulableStartFailsAtItsDeadlineThenRestarts(t *testing.T) {
	e := newEnv(t)
	node := e.engineNode(t, "small", 8)
	e.otherPod(t, node, 8)
	e.serveEngines(t)
	d := daemontest.Start(t, e.engineConfig(t, "8", "start_timeout: 3s\n"), daemontest.Options{})
	ctx := ctxFor(t, 3*time.Minute)
	m := d.Domain.Services
	s, err := m.Create(ctx, services.CreateSpec{ModelID: "org/name", EngineType: "vllm", RestartPolicy: services.RestartOnFailure})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartWith(ctx, s.ID, services.StartOptions{Force: true}); err != nil { // the configured start_timeout
		t.Fatal(err)
	}
	got, err := m.Wait(ctx, s.ID, services.StatusFailed, time.Minute)
	if err != nil {
		t.Fatalf("wait for failed: %v\n%s", err, d.Logs.String())
	}
	if got.Failure != services.FailureUnschedulable || got.Phase != services.PhaseStart ||
		!strings.Contains(got.Reason, "within the start's deadline (3s)") || !strings.Contains(got.Reason, "Insufficient nvidia.com/gpu") {
		t.Errorf("failed as %s in phase %s: %q; want unschedulable in start with the scheduler's message", got.Failure, got.Phase, got.Reason)
	}
	if got.NextRestartAt == nil {
		t.Fatalf("no restart planned by the on-failure policy")
	}
	// The other Pod ends: a restart (a later one if placement still saw
	// its GPUs held) lands on the node.
	e.removeOtherPod(t)
	again := e.runningAgain(t, ctx, d, s.ID, s.Run)
	if again.RestartCount < 1 || again.Run < 2 {
		t.Errorf("running after restarts %d, run %d; want a restart by the policy", again.RestartCount, again.Run)
	}
}
