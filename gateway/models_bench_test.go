package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/runtime/fakeruntime"
	"aima/services"
	"aima/state"
)

// manyServices is how many services BenchmarkModelsManyServices stores.
const manyServices = 10000

// seedAliased writes n created service records, each serving model-N with
// one alias alias-N, straight into the bolt store of dataDir (one
// transaction: creating them one by one through the manager takes
// minutes).
func seedAliased(b *testing.B, dataDir string, n int) {
	b.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(state.BackendBolt, dataDir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ops := make([]state.Op, 0, n)
	for i := range n {
		id := fmt.Sprintf("svc-%08x", i)
		at := t0.Add(time.Duration(i) * time.Second)
		s := services.Service{ID: id, Name: fmt.Sprintf("bench-%d", i), EngineType: "vllm", ModelID: "org/bench-model",
			ModelRef: "org/bench-model", GPUs: "none", Status: services.StatusCreated, CreatedAt: at, UpdatedAt: at,
			ServedModel: fmt.Sprintf("model-%05d", i), Aliases: []string{fmt.Sprintf("alias-%05d", i)}, OnDemand: true}
		raw, err := json.Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, state.Op{Key: "services/" + id, Value: raw})
	}
	if err := state.Apply(context.Background(), st, ops); err != nil {
		b.Fatal(err)
	}
}

// get GETs url and returns the wall time to the last byte, the status and
// the body's size.
func get(b *testing.B, url string) (time.Duration, int, int) {
	b.Helper()
	t0 := time.Now()
	resp, err := benchClient.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	return time.Since(t0), resp.StatusCode, int(n)
}

// BenchmarkModelsManyServices: GET /v1/models (20,000 names) and GET
// /v1/models/nope (a 404 naming a few similar names) with 10,000 services
// of one alias each, over HTTP on an in-process daemon (fake runtime: no
// container is involved), next to GET /health as the round-trip baseline
// of the same run. The first /v1/models reads the store into the record
// cache and builds the name index; the medians are of calls with the
// records unchanged. Goal: both under 50 ms.
//
//	go test -run '^$' -bench ModelsManyServices -benchtime 20x ./gateway/
func BenchmarkModelsManyServices(b *testing.B) {
	fr := fakeruntime.New()
	b.Cleanup(fr.Close)
	dataDir := filepath.Join(b.TempDir(), "data")
	seedAliased(b, dataDir, manyServices)
	cfg := testenv.SimConfig(b, testenv.SimConfigOptions{Image: "fake/vllm:1", PortSpan: 50})
	d := daemontest.Start(b, cfg, daemontest.Options{Runtime: fr, DataDir: dataDir})
	first, code, size := get(b, d.URL+"/v1/models")
	if code != 200 {
		b.Fatalf("/v1/models: HTTP %d", code)
	}
	_, code, notFoundSize := get(b, d.URL+"/v1/models/nope")
	if code != 404 {
		b.Fatalf("/v1/models/nope: HTTP %d", code)
	}
	// Each kind of call in its own loop, with the process's CPU time per
	// call beside the wall time: on a machine shared with other work the
	// CPU time is the steadier figure.
	measure := func(url string) (wall, cpu float64) {
		var ds []time.Duration
		var before, after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		for range b.N {
			d, _, _ := get(b, url)
			ds = append(ds, d)
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		used := after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()
		return testenv.Ms(testenv.Median(ds)), float64(used) / float64(b.N) / 1e6
	}
	b.ResetTimer()
	ml, cl := measure(d.URL + "/v1/models")
	mn, cn := measure(d.URL + "/v1/models/nope")
	mh, ch := measure(d.URL + "/health")
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ml, "ms-models")
	b.ReportMetric(mn, "ms-model-404")
	b.ReportMetric(mh, "ms-health")
	b.ReportMetric(cl, "cpu-ms-models")
	b.ReportMetric(cn, "cpu-ms-model-404")
	b.Logf("%d services: GET /v1/models median %.2f ms, %.2f ms CPU a call (first call %.0f ms, reading the store; %d KB); GET /v1/models/nope %.2f ms, %.2f ms CPU (%d bytes); GET /health %.2f ms, %.2f ms CPU; ratios to /health %.0f and %.0f (goal: both under 50 ms)",
		manyServices, ml, cl, testenv.Ms(first), size>>10, mn, cn, notFoundSize, mh, ch, ml/mh, mn/mh)
}
