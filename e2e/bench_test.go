package e2e

// Latency benchmarks of the lifecycle against a real Docker engine and the
// engine simulator. They report medians with b.ReportMetric (ns/op is
// suppressed: an iteration is a whole engine start, not the thing measured).
// Run them with a small fixed count, e.g.
//
//	go test -run '^$' -bench . -benchtime=10x ./e2e/
//
// See docs/performance.md for what each one measures and the targets.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/events"
	"aima/internal/testenv"
	"aima/runtime"
	"aima/runtime/docker"
	"aima/services"
	"aima/tools"
)

// reportLatency reports the median and the extremes of the samples in ms.
func reportLatency(b *testing.B, name string, samples []time.Duration) {
	b.Helper()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(testenv.Ms(testenv.Median(samples)), "ms-"+name)
	b.ReportMetric(testenv.Ms(slices.Min(samples)), "ms-min")
	b.ReportMetric(testenv.Ms(slices.Max(samples)), "ms-max")
	b.Logf("%s samples: %v", name, samples)
}

// firstHealthy polls url every 5 ms and returns a channel that receives
// the moment the first HTTP 200 arrived; stop ends the polling.
func firstHealthy(url string) (got <-chan time.Time, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan time.Time, 1)
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ch <- time.Now()
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return ch, func() { cancel(); wg.Wait() }
}

// BenchmarkReadyToRunning: from the engine's health endpoint first
// answering 200 (seen by a 5 ms poller of our own) to aima's "running"
// status event.
func BenchmarkReadyToRunning(b *testing.B) {
	p := newInproc(b)
	var samples []time.Duration
	for i := 0; i < b.N; i++ {
		// An explicit port: the poller must know it before the start.
		s := p.createService(b, tools.ServiceCreateInput{Name: fmt.Sprintf("r2r-%d", i), Port: testenv.FreePort(b)})
		ready, stop := firstHealthy(s.Endpoint + "/health")
		_, evs, err := p.startWait(b, s.ID, 120)
		if err != nil {
			stop()
			b.Fatalf("start: %v", err)
		}
		running, ok := statusEvent(evs, "running")
		if !ok {
			stop()
			b.Fatalf("no running event:\n%s", eventLines(evs))
		}
		var readyAt time.Time
		select {
		case readyAt = <-ready:
		case <-time.After(10 * time.Second):
			stop()
			b.Fatal("the poller never saw HTTP 200 from a running service")
		}
		stop()
		samples = append(samples, running.Time.Sub(readyAt))
		p.call(b, "service_delete", tools.ServiceRef{ServiceID: s.ID}, nil)
	}
	reportLatency(b, "ready-to-running", samples)
}

// BenchmarkExitToFailed: from the container's exit during a start (Docker's
// State.FinishedAt; the simulator fails with oom-load) to aima's "failed"
// status event. A Docker events subscriber of our own splits it into the
// engine's part (exit → its "die" event arrives) and aima's (the "die"
// event arrives → failed: aima reacts to the same event); a waiter of our
// own (the Docker wait API) adds exit → the wait returns, for comparison
// (see docs/performance.md).
func BenchmarkExitToFailed(b *testing.B) {
	p := newInproc(b)
	rt, err := docker.New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Close() })
	var total, engine, aima, die []time.Duration
	for i := 0; i < b.N; i++ {
		s := p.createService(b, tools.ServiceCreateInput{Name: fmt.Sprintf("e2f-%d", i), Env: []string{"SIM_FAIL=oom-load"}})
		// Docker's die event, for comparison with the wait aima uses.
		evctx, stopEvents := context.WithTimeout(context.Background(), 2*time.Minute)
		dockerEvents, _ := rt.Events(evctx, runtime.EventOptions{Labels: map[string]string{"aima.service": s.ID}})
		died := make(chan time.Time, 1)
		go func() {
			for ev := range dockerEvents {
				if ev.Action == runtime.ActionDie {
					died <- time.Now()
					return
				}
			}
		}()
		var out tools.StartOutput
		p.call(b, "service_start", tools.ServiceStartInput{ServiceID: s.ID, TimeoutSeconds: 120}, &out)
		cid := p.waitFor(b, s.ID, time.Minute, "with a container", func(x services.Service) bool {
			return x.ContainerID != "" || x.Status == services.StatusFailed
		}).ContainerID
		if cid == "" {
			b.Fatal("the start failed before it created a container")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		ex := <-rt.WaitExit(ctx, cid)
		waited := time.Now()
		cancel()
		if ex.Err != nil {
			b.Fatalf("wait: %v", ex.Err)
		}
		var st services.Service
		if err := p.try(b, "service_wait", tools.ServiceWaitInput{ServiceID: s.ID, For: "failed", TimeoutSeconds: 120}, &st, nil); err != nil {
			b.Fatalf("wait for failed: %v", err)
		}
		if st.Failure == services.FailureTimeout || st.ContainerID != cid {
			b.Fatalf("not an exit failure of %s: %q", cid, st.Reason)
		}
		var hist tools.EventsOutput
		p.call(b, "service_events", tools.ServiceEventsInput{ServiceID: s.ID, After: out.EventsFrom}, &hist)
		var failedAt time.Time
		for _, h := range hist.Items {
			if h.Type == events.TypeStatus && h.Status == "failed" {
				failedAt = h.Time
			}
		}
		if failedAt.IsZero() {
			b.Fatal("no failed status event in the history")
		}
		info, err := exec.Command("docker", "inspect", "-f", "{{.State.FinishedAt}}", cid).Output()
		if err != nil {
			b.Fatalf("docker inspect: %v", err)
		}
		finished, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(info)))
		if err != nil {
			b.Fatalf("FinishedAt %q: %v", info, err)
		}
		select {
		case at := <-died:
			die = append(die, at.Sub(finished))
			aima = append(aima, failedAt.Sub(at))
		case <-time.After(10 * time.Second):
			b.Error("no die event from Docker")
		}
		stopEvents()
		total = append(total, failedAt.Sub(finished))
		engine = append(engine, waited.Sub(finished))
		p.call(b, "service_delete", tools.ServiceRef{ServiceID: s.ID}, nil)
	}
	reportLatency(b, "exit-to-failed", total)
	b.ReportMetric(testenv.Ms(testenv.Median(engine)), "ms-exit-to-wait")
	if len(die) > 0 {
		b.ReportMetric(testenv.Ms(testenv.Median(die)), "ms-exit-to-die-event")
		b.ReportMetric(testenv.Ms(testenv.Median(aima)), "ms-die-event-to-failed")
	}
	b.Logf("exit-to-wait samples: %v\nexit-to-die-event samples: %v\ndie-event-to-failed samples: %v", engine, die, aima)
}

// pollHealthy GETs url every interval until HTTP 200 (true) or timeout.
func pollHealthy(url string, interval, timeout time.Duration) bool {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(interval)
	}
	return false
}

// runCmd runs a command and fails the benchmark on a non-zero exit.
func runCmd(b *testing.B, name string, args ...string) string {
	b.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// BenchmarkStartOverhead compares `aima service start --wait` (the built
// CLI against an `aima start` daemon) with the bare minimum to the same
// point: `docker run -d` of the same image, model mount and time scale,
// then polling /health every 10 ms until 200. The two alternate, in
// alternating order; the metric is the ratio of their medians.
func BenchmarkStartOverhead(b *testing.B) {
	testenv.RequireDocker(b)
	image := testenv.EngineSimImage(b)
	daemon := testenv.StartDaemon(b, testenv.DaemonOptions{Config: testenv.SimConfig(b, testenv.SimConfigOptions{Image: image})})
	modelDir := testenv.MakeModel(b, "qwen-tiny")
	var model struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(daemon.MustCLI(b, "model", "add", "--path", modelDir, "-o", "json").Stdout), &model); err != nil || model.ID == "" {
		b.Fatalf("model add: %v %+v", err, model)
	}
	label := testenv.UniqueName(b)
	testenv.RemoveContainersWithLabel(b, "aima.bench", label)

	viaAima := func(i int) time.Duration {
		var s struct {
			ID string `json:"id"`
		}
		out := daemon.MustCLI(b, "service", "create", "--model-id", model.ID, "--engine-type", "vllm", "--name", fmt.Sprintf("ovh-%d", i), "-o", "json").Stdout
		if err := json.Unmarshal([]byte(out), &s); err != nil || s.ID == "" {
			b.Fatalf("service create: %v: %s", err, out)
		}
		testenv.RemoveContainersWithLabel(b, "aima.service", s.ID)
		t0 := time.Now()
		daemon.MustCLI(b, "service", "start", s.ID, "--wait", "--timeout", "120")
		d := time.Since(t0)
		daemon.MustCLI(b, "service", "delete", s.ID)
		return d
	}
	viaDocker := func(i int) time.Duration {
		port := testenv.FreePort(b)
		name := fmt.Sprintf("%s-%d", label, i)
		t0 := time.Now()
		runCmd(b, "docker", "run", "-d", "--name", name, "--label", "aima.bench="+label,
			"-p", fmt.Sprintf("127.0.0.1:%d:8000", port), "--shm-size", "1g",
			"-e", "SIM_TIME_SCALE="+testenv.SimTimeScale, "-v", modelDir+":/models/x:ro",
			image, "--model", "/models/x")
		if !pollHealthy(fmt.Sprintf("http://127.0.0.1:%d/health", port), 10*time.Millisecond, 2*time.Minute) {
			b.Fatalf("plain docker run of %s never answered /health", image)
		}
		d := time.Since(t0)
		runCmd(b, "docker", "rm", "-f", name)
		return d
	}

	var aimaT, dockerT []time.Duration
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			aimaT = append(aimaT, viaAima(i))
			dockerT = append(dockerT, viaDocker(i))
		} else {
			dockerT = append(dockerT, viaDocker(i))
			aimaT = append(aimaT, viaAima(i))
		}
	}
	ma, md := testenv.Median(aimaT), testenv.Median(dockerT)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(ma)/float64(md), "ratio")
	b.ReportMetric(testenv.Ms(ma), "ms-aima")
	b.ReportMetric(testenv.Ms(md), "ms-docker")
	b.Logf("aima start --wait: %v\ndocker run + poll: %v", aimaT, dockerT)
}
