package docker

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/runtime"
)

// TestEngineSim drives the simulator image through the whole runtime the way
// a service start does: events, create with a read-only model mount and an
// ephemeral port, start, readiness over the published port, logs, stop.
func TestEngineSim(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	img := testenv.EngineSimImage(t)
	models := t.TempDir()
	if err := os.MkdirAll(filepath.Join(models, "tiny"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"architectures":["LlamaForCausalLM"],"max_position_embeddings":4096}`
	if err := os.WriteFile(filepath.Join(models, "tiny", "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	evs, _ := f.d.Events(ctx, runtime.EventOptions{Labels: f.labels})

	spec := f.spec(img, "--model", "/models/tiny", "--port", "8000")
	spec.ContainerPort = 8000
	spec.Env = []string{"SIM_STARTUP=1s"}
	spec.Mounts = []runtime.Mount{{Source: models, Target: "/models", ReadOnly: true}}
	spec.ShmSize = 1 << 30
	id := f.run(t, spec)
	nextEvent(t, evs, id, "start")

	st, err := f.d.InspectContainer(ctx, id)
	if err != nil || !st.Running || st.HostPort == 0 || st.Labels[testLabel] != f.name {
		t.Fatalf("inspect: %+v, %v", st, err)
	}
	started := time.Now()
	if err := waitHealthy(ctx, fmt.Sprintf("http://127.0.0.1:%d/health", st.HostPort)); err != nil {
		lines, _ := readLogs(ctx, t, f.d, id, runtime.LogOptions{Tail: 30})
		t.Fatalf("simulator never became healthy: %v\n%s", err, strings.Join(texts(lines), "\n"))
	}
	t.Logf("healthy on host port %d after %v", st.HostPort, time.Since(started))

	lines, err := readLogs(ctx, t, f.d, id, runtime.LogOptions{Tail: -1})
	if err != nil || len(lines) == 0 {
		t.Fatalf("logs: %d lines, %v", len(lines), err)
	}
	if !slices.ContainsFunc(lines, func(l runtime.LogLine) bool { return strings.Contains(l.Text, "Application startup complete") }) {
		t.Errorf("no ready line in logs:\n%s", strings.Join(texts(lines), "\n"))
	}

	wait := f.d.WaitExit(ctx, id)
	stopAt := time.Now()
	if err := f.d.StopContainer(ctx, id, runtime.StopOptions{Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if ex := <-wait; ex.Err != nil || ex.ExitCode != 0 {
		t.Errorf("exit after stop: %+v, want 0", ex)
	}
	t.Logf("stop (SIGTERM) took %v", time.Since(stopAt))
	if die := nextEvent(t, evs, id, "die"); die.ExitCode != 0 {
		t.Errorf("die event %+v", die)
	}
	tail, err := readLogs(ctx, t, f.d, id, runtime.LogOptions{Tail: 3})
	if err != nil || len(tail) != 3 {
		t.Errorf("tail 3: %q, %v", texts(tail), err)
	}
	t.Logf("last lines: %q", texts(tail))
}

// waitHealthy polls url until it answers 200 or ctx ends.
func waitHealthy(ctx context.Context, url string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
