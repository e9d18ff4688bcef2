package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"aima/client"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/models"
	"aima/runtime"
	"aima/runtime/fakeruntime"
	"aima/services"
	"aima/tools"
)

// The tests here run the whole daemon on the fake runtime: no Docker, so
// they run in -short too. prometheus_test.go runs a real Prometheus against
// a daemon on Docker with the engine simulator.

const fakeImage = "fake/vllm:1"

func fakeDaemon(t *testing.T, fr *fakeruntime.Runtime, token string) *daemontest.Daemon {
	t.Helper()
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Image: fakeImage,
		Extra: "health_interval: 5ms\nliveness_interval: 20ms\nunhealthy_grace: 1h\nrestart_backoff: 50ms\n"})
	return daemontest.Start(t, cfg, daemontest.Options{Runtime: fr, Token: token})
}

func newFake(t *testing.T) *fakeruntime.Runtime {
	fr := fakeruntime.New(fakeruntime.WithImages(fakeImage))
	t.Cleanup(fr.Close)
	return fr
}

// call runs op through the HTTP API as the front-end fe (tools.Frontend*).
func call[T any](t *testing.T, url, fe, op string, in any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := client.New(url)
	c.Frontend = fe
	raw, err := c.Call(ctx, op, in, nil)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	var out T
	if err := client.Decode(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func await(t *testing.T, url, id string, want services.Status) services.Service {
	t.Helper()
	return call[services.Service](t, url, "", "service_wait", tools.ServiceWaitInput{ServiceID: id, For: string(want), TimeoutSeconds: 30})
}

// scrape GETs path and returns the body, failing on any status but 200.
func scrape(t *testing.T, url, path, token string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// parse reads a text exposition.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return fams
}

// find returns the series of family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// one returns the value of the single series of name with labels want.
func one(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	ms := find(fams, name, want)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series", name, want, len(ms))
	}
	m := ms[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return m.Untyped.GetValue()
}

// promtoolCheck runs `promtool check metrics` (Debian's prometheus package)
// on an exposition: the names, types, units and help follow Prometheus's
// conventions. It fails, never skips, without promtool, but in -short.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if testing.Short() {
			t.Skip("promtool not installed (-short)")
		}
		t.Fatalf("promtool is needed (apt-get install prometheus): %v", err)
	}
	cmd := exec.CommandContext(t.Context(), path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// A start, a crash and its automatic restart, and a failed start show in
// /metrics as the records and the event bus say: the status state set,
// one phase observation per phase and run, the time to ready, the restart,
// the start failure by phase and kind; every call counts by front-end.
func TestDaemonMetrics(t *testing.T) {
	t.Parallel()
	fr := newFake(t)
	d := fakeDaemon(t, fr, "")
	svc := call[services.Service](t, d.URL, tools.FrontendCLI, "service_create",
		tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm", Name: "crashes", RestartPolicy: "on-failure"})
	call[tools.StartOutput](t, d.URL, tools.FrontendCLI, "service_start", tools.ServiceStartInput{ServiceID: svc.ID, Wait: true})
	first := await(t, d.URL, svc.ID, services.StatusRunning)
	if err := fr.Exit(first.ContainerID, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := call[services.Service](t, d.URL, "", "service_status", tools.ServiceRef{ServiceID: svc.ID})
		if s.RestartCount == 1 && s.Status == services.StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restart: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	bad := call[services.Service](t, d.URL, tools.FrontendMCP, "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm", Name: "fails"})
	fr.SetScript(map[string]string{runtime.LabelService: bad.ID}, fakeruntime.Script{Steps: []fakeruntime.Step{fakeruntime.Log("boom"), fakeruntime.Exit(3)}})
	call[tools.StartOutput](t, d.URL, tools.FrontendMCP, "service_start", tools.ServiceStartInput{ServiceID: bad.ID})
	if got := await(t, d.URL, bad.ID, services.StatusFailed); got.Failure != services.FailureExited {
		t.Fatalf("failed start: %+v", got)
	}
	// A JSON-RPC call and an unknown service on the plain HTTP API.
	if code, body := post(t, d.URL+"/rpc", `{"jsonrpc":"2.0","id":1,"method":"service.list"}`); code != 200 || !strings.Contains(body, `"total":2`) {
		t.Fatalf("/rpc: %d %s", code, body)
	}
	if resp, err := http.Get(d.URL + "/api/service/status?service_id=nope"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("status of an unknown service: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	text := scrape(t, d.URL, "/metrics", "")
	promtoolCheck(t, text)
	fams := parse(t, text)
	for _, st := range services.AllStatuses {
		want := 0.0
		if st == services.StatusRunning {
			want = 1
		}
		if got := one(t, fams, "aima_service_status", map[string]string{"service": svc.ID, "engine": "vllm", "status": string(st)}); got != want {
			t.Errorf("aima_service_status %s = %v, want %v", st, got, want)
		}
	}
	if got := one(t, fams, "aima_service_status", map[string]string{"service": bad.ID, "status": "failed"}); got != 1 {
		t.Errorf("failed service's state: %v", got)
	}
	if got := one(t, fams, "aima_service_restarts_total", map[string]string{"service": svc.ID}); got != 1 {
		t.Errorf("restarts %v", got)
	}
	// Two runs of the first service and one of the second went through
	// every phase before loading; the second died loading.
	for _, p := range services.StartPhases {
		ok := 3.0
		switch p {
		case services.PhaseLoading:
			ok = 2
			if got := one(t, fams, "aima_service_start_phase_duration_seconds", map[string]string{"phase": string(p), "outcome": "failed"}); got != 1 {
				t.Errorf("phase %s failed: %v observations", p, got)
			}
		case services.PhaseHealthCheck:
			ok = 2
		}
		if got := one(t, fams, "aima_service_start_phase_duration_seconds", map[string]string{"engine": "vllm", "phase": string(p), "outcome": "ok"}); got != ok {
			t.Errorf("phase %s: %v observations, want %v", p, got, ok)
		}
	}
	if got := one(t, fams, "aima_service_ready_duration_seconds", map[string]string{"engine": "vllm", "outcome": "ok"}); got != 2 {
		t.Errorf("ready observations %v", got)
	}
	if got := one(t, fams, "aima_service_ready_duration_seconds", map[string]string{"outcome": "failed"}); got != 1 {
		t.Errorf("failed-start observations %v", got)
	}
	if got := one(t, fams, "aima_service_start_failures_total", map[string]string{"engine": "vllm", "phase": "loading", "kind": "exited"}); got != 1 {
		t.Errorf("start failures %v", got)
	}
	if got := one(t, fams, "aima_docker_up", nil); got != 1 {
		t.Errorf("docker up %v", got)
	}
	if got := one(t, fams, "aima_build_info", nil); got != 1 {
		t.Errorf("build info %v", got)
	}
	for _, c := range []struct {
		op, fe, kind string
		min          float64
	}{
		{"service_create", "cli", "ok", 1}, {"service_start", "cli", "ok", 1}, {"service_create", "mcp", "ok", 1},
		{"service_list", "jsonrpc", "ok", 1}, {"service_status", "http", "not_found", 1}, {"service_wait", "http", "ok", 2},
		{"model_add", "mcp", "ok", 0}, // every operation is in the table from the start
	} {
		if got := one(t, fams, "aima_operations_total", map[string]string{"operation": c.op, "frontend": c.fe, "kind": c.kind}); got < c.min || (c.min == 0 && got != 0) {
			t.Errorf("aima_operations_total{%s,%s,%s} = %v, want %v", c.op, c.fe, c.kind, got, c.min)
		}
	}
	if got := one(t, fams, "aima_operation_duration_seconds", map[string]string{"operation": "service_create", "frontend": "cli"}); got != 1 {
		t.Errorf("duration observations %v", got)
	}
	if got := one(t, fams, "aima_event_bus_deliveries_total", nil); got == 0 {
		t.Error("no event bus deliveries counted")
	}
	if got := one(t, fams, "aima_event_bus_published_events_total", nil); got < 20 {
		t.Errorf("published events %v", got)
	}

	// The fake engine answers "{}" on every path: not metrics, so its
	// scrape is down, with the series labelled, and the endpoint still 200.
	eng := parse(t, scrape(t, d.URL, "/metrics/engines", ""))
	if got := one(t, eng, "aima_engine_scrape_up", map[string]string{"aima_service": svc.ID, "aima_engine": "vllm"}); got != 0 {
		t.Errorf("scrape up of a non-metrics engine: %v", got)
	}
	var sd []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err := json.Unmarshal([]byte(scrape(t, d.URL, "/metrics/targets", "")), &sd); err != nil {
		t.Fatal(err)
	}
	running := call[services.Service](t, d.URL, "", "service_status", tools.ServiceRef{ServiceID: svc.ID})
	if len(sd) != 1 || sd[0].Targets[0] != strings.TrimPrefix(running.Endpoint, "http://") ||
		sd[0].Labels["__metrics_path__"] != "/metrics" || sd[0].Labels["aima_service"] != svc.ID || sd[0].Labels["aima_engine"] != "vllm" {
		t.Errorf("targets %+v (endpoint %s)", sd, running.Endpoint)
	}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The metrics routes are behind the daemon's guard: with a token set, a
// scrape needs it (Prometheus: authorization in the scrape config).
func TestMetricsNeedTheToken(t *testing.T) {
	t.Parallel()
	d := fakeDaemon(t, newFake(t), "s3cret-token")
	for _, p := range []string{"/metrics", "/metrics/engines", "/metrics/targets"} {
		resp, err := http.Get(d.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d", p, resp.StatusCode)
		}
		scrape(t, d.URL, p, "s3cret-token") // 200 (no engines run: /metrics/engines is empty)
	}
	if got := fmt.Sprint(one(t, parse(t, scrape(t, d.URL, "/metrics", "s3cret-token")), "aima_docker_up", nil)); got != "1" {
		t.Errorf("docker up %s", got)
	}
}

// The GPU inventory's figures and the services' leases show in /metrics:
// two fake GPUs (a fake nvidia-smi), one service started on them.
func TestGPUMetrics(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the fake nvidia-smi")
	}
	fr := newFake(t)
	fake := testenv.FakeNvidiaSMI(t, testenv.TwoGPUs())
	cfg := testenv.GPUConfig(t, fake, testenv.SimConfigOptions{Image: fakeImage, Extra: "health_interval: 5ms\n"})
	d := daemontest.Start(t, cfg, daemontest.Options{Runtime: fr})
	model := call[models.Model](t, d.URL, "", "model_add", tools.ModelAddInput{Path: testenv.MakeModel(t, "qwen-gpu")})
	svc := call[services.Service](t, d.URL, "", "service_create", tools.ServiceCreateInput{ModelID: model.ID, EngineType: "vllm"})
	call[tools.StartOutput](t, d.URL, "", "service_start", tools.ServiceStartInput{ServiceID: svc.ID, Wait: true})
	s := await(t, d.URL, svc.ID, services.StatusRunning)
	if s.GPULease == nil || len(s.GPULease.Devices) != 1 {
		t.Fatalf("lease %+v", s.GPULease)
	}
	text := scrape(t, d.URL, "/metrics", "")
	promtoolCheck(t, text)
	fams := parse(t, text)
	if got := one(t, fams, "aima_gpu_inventory_up", nil); got != 1 {
		t.Errorf("inventory up %v", got)
	}
	for _, i := range []string{"0", "1"} {
		if got := one(t, fams, "aima_gpu_memory_total_bytes", map[string]string{"gpu": i}); got != 80<<30 {
			t.Errorf("GPU %s total %v", i, got)
		}
	}
	dev := s.GPULease.Devices[0]
	if got := one(t, fams, "aima_service_gpu_lease_fraction", map[string]string{"service": svc.ID, "engine": "vllm",
		"gpu": fmt.Sprint(dev.Index), "uuid": dev.UUID, "sleeping": "false"}); got != s.GPULease.Fraction || got <= 0 {
		t.Errorf("lease fraction %v, record %v", got, s.GPULease.Fraction)
	}
}
