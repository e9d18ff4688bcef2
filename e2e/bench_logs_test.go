package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
)

// Log throughput against `docker logs` on the same container, in the same
// run: a container of internal/testenv/testprog prints logLines lines of
// logLineSize bytes, labelled as the container of a service that was
// created (never started), so aima serves its logs like any service's.
const (
	logLines    = 200000
	logLineSize = 100
)

// logsBench is an `aima start` daemon with one service whose container is
// a testprog flood.
type logsBench struct {
	daemon  *testenv.DaemonProc
	service string
	image   string
	null    *os.File
}

func newLogsBench(b *testing.B) *logsBench {
	b.Helper()
	testenv.RequireDocker(b)
	lb := &logsBench{image: testenv.TestProgImage(b)}
	lb.daemon = testenv.StartDaemon(b, testenv.DaemonOptions{Config: testenv.SimConfig(b, testenv.SimConfigOptions{Image: testenv.EngineSimRef})})
	out := lb.daemon.MustCLI(b, "service", "create", "--model-id", "org/flood", "--engine-type", "vllm", "-o", "json").Stdout
	var s struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.ID == "" {
		b.Fatalf("service create: %v: %s", err, out)
	}
	lb.service = s.ID
	b.Cleanup(func() { testenv.RemoveContainersWithLabel(b, "aima.service", s.ID) })
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { null.Close() })
	lb.null = null
	return lb
}

// flood runs a flood container of the service (after sleeping for delay)
// and returns its ID without waiting for it.
func (lb *logsBench) flood(b *testing.B, delay time.Duration) string {
	b.Helper()
	testenv.RemoveContainersWithLabel(b, "aima.service", lb.service)
	return strings.TrimSpace(runCmd(b, "docker", "run", "-d", "--label", "aima.managed=true", "--label", "aima.service="+lb.service,
		lb.image, "sleep:"+delay.String(), fmt.Sprintf("flood:%d:%d", logLines, logLineSize)))
}

// timed runs a command with stdout to /dev/null and returns its wall time.
func (lb *logsBench) timed(b *testing.B, name string, args ...string) time.Duration {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "AIMA_ADDR="+lb.daemon.Addr)
	cmd.Stdout = lb.null
	var errb strings.Builder
	cmd.Stderr = &errb
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return time.Since(t0)
}

// httpLogs reads the logs endpoint's whole answer and returns its wall time.
func (lb *logsBench) httpLogs(b *testing.B) time.Duration {
	b.Helper()
	return lb.daemon.TimeLogs(b, lb.service, logLines*logLineSize)
}

func waitExited(b *testing.B, id string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "wait", id).CombinedOutput(); err != nil {
		b.Fatalf("docker wait %s: %v: %s", id, err, out)
	}
}

// reportRatio reports median(aima)/median(docker) and both medians.
func reportRatio(b *testing.B, name string, aima, dockerT []time.Duration) {
	b.Helper()
	ma, md := testenv.Median(aima), testenv.Median(dockerT)
	b.ReportMetric(float64(md)/float64(ma), "x-docker-"+name)
	b.ReportMetric(testenv.Ms(ma), "ms-aima-"+name)
	b.ReportMetric(testenv.Ms(md), "ms-docker-"+name)
	b.Logf("%s: aima %v, docker %v", name, aima, dockerT)
}

// BenchmarkLogs reads a 200,000-line log whole, alternating `docker logs`
// with `aima service logs --tail -1` (the CLI), a GET of /api/service/logs
// (HTTP, the JSON document) and `docker logs -t` (HTTP's baseline), and
// follows a container that floods its
// output as fast as it can (`docker logs -f` against `aima service logs
// --follow`, each on its own container). The metrics are throughput
// relative to docker logs (x-docker-*: median docker time / median aima
// time, so ≥ 1 means at least as fast).
func BenchmarkLogs(b *testing.B) {
	lb := newLogsBench(b)
	id := lb.flood(b, 0)
	waitExited(b, id)
	var cliT, httpT, dockerT, dockerTST []time.Duration
	for i := 0; i < b.N; i++ {
		aimaCLI := func() { cliT = append(cliT, lb.timed(b, lb.daemon.Bin, "service", "logs", lb.service, "--tail", "-1")) }
		if i%2 == 1 {
			aimaCLI()
		}
		dockerT = append(dockerT, lb.timed(b, "docker", "logs", id))
		if i%2 == 0 {
			aimaCLI()
		}
		httpT = append(httpT, lb.httpLogs(b))
		dockerTST = append(dockerTST, lb.timed(b, "docker", "logs", "-t", id))
	}
	reportRatio(b, "cli", cliT, dockerT)
	reportRatio(b, "http", httpT, dockerT)
	// The JSON document carries each line's time, which Docker formats only
	// when asked (as `docker logs -t` asks): its like-for-like baseline.
	reportRatio(b, "t-http", httpT, dockerTST)

	var followA, followD []time.Duration
	for i := 0; i < b.N; i++ {
		id := lb.flood(b, 500*time.Millisecond)
		followD = append(followD, lb.timed(b, "docker", "logs", "-f", id))
		id = lb.flood(b, 500*time.Millisecond)
		followA = append(followA, lb.timed(b, lb.daemon.Bin, "service", "logs", lb.service, "--follow", "--tail", "-1"))
		waitExited(b, id)
	}
	reportRatio(b, "follow", followA, followD)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(logLines), "lines")
}
