package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/internal/testenv"
)

// BenchmarkRecordsCreatedOverHTTP measures the daemon's memory the way an
// operator would: an `aima start` daemon, 10,000 services created through
// the HTTP API (four clients at a time), then the daemon's VmRSS from /proc
// right after and again after a minute idle. The baseline, in the same run,
// is the same daemon empty, just started; `MiB-binary` is the part of the
// resident set that is the binary's own pages (package initialisation
// touches them whatever the store holds), the floor no record can lower.
func BenchmarkRecordsCreatedOverHTTP(b *testing.B) {
	testenv.RequireDocker(b)
	d := testenv.NewDaemon(b, testenv.DaemonOptions{DataDir: filepath.Join(b.TempDir(), "data"), Env: benchEnv(),
		Config: testenv.SimConfig(b, testenv.SimConfigOptions{Image: testenv.EngineSimRef})})
	d.Restart(b)
	time.Sleep(2 * time.Second) // past the start-up's reconcile and its return of garbage to the system
	empty := testenv.ReadProcMemory(b, d.PID()).RSS
	binary := binaryRSSKiB(b, d.PID())
	// One population per run, whatever b.N: creating the 10,000 records is
	// the measurement.
	t0 := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				in := map[string]any{"model_id": "org/bench-model", "engine_type": "vllm", "name": fmt.Sprintf("bench-%d", i),
					"args": []string{"--max-model-len=8192"}, "env": []string{"VLLM_LOGGING_LEVEL=INFO"}}
				if code, body, err := d.Post("/api/service/create", in); err != nil || code != 200 {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("create %d: HTTP %d %s %v", i, code, body, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < manyRecords; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	created := time.Since(t0)
	m := testenv.ReadProcMemory(b, d.PID())
	after, peak := m.RSS, m.Peak
	time.Sleep(time.Minute)
	idle := testenv.ReadProcMemory(b, d.PID()).RSS
	b.ReportMetric(float64(empty)/1024, "MiB-rss-empty")
	b.ReportMetric(float64(binary)/1024, "MiB-binary")
	b.ReportMetric(float64(after)/1024, "MiB-rss-created")
	b.ReportMetric(float64(idle)/1024, "MiB-rss-idle-1m")
	b.ReportMetric(float64(peak)/1024, "MiB-rss-peak")
	b.ReportMetric(float64(created.Milliseconds())/manyRecords, "ms-per-create")
	b.ReportMetric(0, "ns/op")
}

// binaryRSSKiB sums the resident pages of the process's own executable's
// mappings (/proc/PID/smaps).
func binaryRSSKiB(b *testing.B, pid int) int {
	b.Helper()
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps"))
	if err != nil {
		b.Fatal(err)
	}
	total, mine := 0, false
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-"):
			mine = len(f) >= 6 && f[5] == exe
		case mine && len(f) >= 2 && f[0] == "Rss:":
			n, _ := strconv.Atoi(f[1])
			total += n
		}
	}
	return total
}
