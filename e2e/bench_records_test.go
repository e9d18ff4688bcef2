package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/services"
	"aima/state"
)

// manyRecords is how many service records BenchmarkRecords stores.
const manyRecords = 10000

// seedServices writes n created (never started) service records, as
// service_create stores them, straight into the bolt store of dataDir.
func seedServices(b *testing.B, dataDir string, n int) {
	b.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(state.BackendBolt, dataDir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	col := state.NewCollection[services.Service](st, "services/", "service")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("svc-%08x", i)
		at := t0.Add(time.Duration(i) * time.Second)
		s := services.Service{ID: id, Name: fmt.Sprintf("bench-%d", i), EngineType: "vllm", ModelID: "org/bench-model",
			ModelRef: "org/bench-model", GPUs: "none", Status: services.StatusCreated, CreatedAt: at, UpdatedAt: at,
			Args: []string{"--max-model-len=8192"}, Env: []string{"VLLM_LOGGING_LEVEL=INFO"}}
		if err := col.Create(context.Background(), id, s); err != nil {
			b.Fatal(err)
		}
	}
}

// timedGet GETs url, reads the whole answer and returns the wall time.
func timedGet(b *testing.B, url string) (time.Duration, []byte) {
	b.Helper()
	t0 := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: HTTP %d, %v", url, resp.StatusCode, err)
	}
	return d, body
}

// BenchmarkRecords: an `aima start` daemon over a store of 10,000 service
// records. It reports the median latency of `GET /api/service/list` (all
// of them, ~5 MB of JSON) and of `GET /api/service/status` of one, next to
// `GET /health` as the baseline of an HTTP round trip, the daemon's
// resident memory after the lists, and the time of one more
// service_create (name check and all) with 10,000 records present.
func BenchmarkRecords(b *testing.B) {
	testenv.RequireDocker(b)
	dataDir := filepath.Join(b.TempDir(), "data")
	seedServices(b, dataDir, manyRecords)
	d := testenv.NewDaemon(b, testenv.DaemonOptions{DataDir: dataDir, Env: benchEnv(), Config: testenv.SimConfig(b, testenv.SimConfigOptions{Image: testenv.EngineSimRef})})
	d.Restart(b)
	var list, status, health []time.Duration
	for i := 0; i < b.N; i++ {
		dl, body := timedGet(b, d.URL()+"/api/service/list")
		var l struct {
			Total int `json:"total"`
		}
		if err := json.Unmarshal(body, &l); err != nil || l.Total != manyRecords {
			b.Fatalf("list: %d records, %v", l.Total, err)
		}
		list = append(list, dl)
		ds, _ := timedGet(b, d.URL()+"/api/service/status?service_id=svc-00000001")
		status = append(status, ds)
		dh, _ := timedGet(b, d.URL()+"/health")
		health = append(health, dh)
	}
	t0 := time.Now()
	d.MustCLI(b, "service", "create", "--model-id", "org/one-more", "--engine-type", "vllm")
	create := time.Since(t0)
	mem := testenv.ReadProcMemory(b, d.PID())
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(testenv.Ms(testenv.Median(list)), "ms-list")
	b.ReportMetric(testenv.Ms(testenv.Median(status)), "ms-status")
	b.ReportMetric(testenv.Ms(testenv.Median(health)), "ms-health")
	b.ReportMetric(testenv.Ms(create), "ms-create-cli")
	b.ReportMetric(testenv.MiB(mem.RSS), "MiB-rss")
	b.ReportMetric(testenv.MiB(mem.Peak), "MiB-rss-peak")
	b.ReportMetric(testenv.MiB(mem.File), "MiB-rss-file")
	b.Logf("list %v\nstatus %v\nhealth %v", list, status, health)
}

func benchEnv() []string {
	if v := os.Getenv("BENCH_DAEMON_ENV"); v != "" {
		return strings.Fields(v)
	}
	return nil
}
