package metrics_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"aima/enginemetrics"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/models"
	"aima/runtime"
	"aima/services"
	"aima/tools"
)

// A real Prometheus scrapes the daemon's /metrics and /metrics/engines
// (with the daemon's token, as a scrape config would) while a service on
// the engine simulator starts, crashes (docker kill) and is restarted by
// its policy. Prometheus's query API then has the service's status, one
// phase-duration observation per phase and start, the restart, and the
// simulator's own vllm:num_requests_running labelled with the service.
func TestPrometheusScrapesTheDaemon(t *testing.T) {
	testenv.RequireDocker(t)
	const token = "prometheus-test-token"
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Extra: "restart_backoff: 1s\n"})
	d := daemontest.Start(t, cfg, daemontest.Options{Token: token})
	t.Setenv("AIMA_TOKEN", token) // the client sends it
	target := strings.TrimPrefix(d.URL, "http://")
	prom := startPrometheus(t,
		promJob{Name: "aima", Target: target, Path: "/metrics", Token: token},
		promJob{Name: "aima-engines", Target: target, Path: "/metrics/engines", Token: token})

	model := call[models.Model](t, d.URL, "", "model_add", tools.ModelAddInput{Path: testenv.MakeModel(t, "qwen-tiny")})
	svc := call[services.Service](t, d.URL, tools.FrontendCLI, "service_create",
		tools.ServiceCreateInput{ModelID: model.ID, EngineType: "vllm", RestartPolicy: "on-failure"})
	testenv.RemoveContainersWithLabel(t, runtime.LabelService, svc.ID)
	call[tools.StartOutput](t, d.URL, tools.FrontendCLI, "service_start", tools.ServiceStartInput{ServiceID: svc.ID, Wait: true, TimeoutSeconds: 120})
	first := await(t, d.URL, svc.ID, services.StatusRunning)

	sel := fmt.Sprintf(`{service=%q}`, svc.ID)
	prom.await(t, `aima_service_status{service="`+svc.ID+`",status="running"}`, equals(1))
	for _, p := range services.StartPhases {
		prom.await(t, fmt.Sprintf(`sum(aima_service_start_phase_duration_seconds_count{engine="vllm",phase=%q,outcome="ok"})`, p), equals(1))
	}
	prom.await(t, `sum(aima_service_ready_duration_seconds_count{engine="vllm",outcome="ok"})`, equals(1))
	prom.await(t, `aima_engine_scrape_up{aima_service="`+svc.ID+`",aima_engine="vllm"}`, equals(1))
	res := prom.await(t, `vllm:num_requests_running{aima_service="`+svc.ID+`"}`, func(r []promSample) bool { return len(r) == 1 })
	if m := res[0].Metric; m["aima_engine"] != "vllm" || m["model_name"] == "" || m["job"] != "aima-engines" {
		t.Errorf("engine series labels %v", m)
	}

	// The engine is killed; the restart policy starts it again.
	if _, err := testenv.DockerClient(t).ContainerKill(t.Context(), first.ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s := call[services.Service](t, d.URL, "", "service_status", tools.ServiceRef{ServiceID: svc.ID})
		if s.RestartCount == 1 && s.Status == services.StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	prom.await(t, `aima_service_restarts_total`+sel, equals(1))
	prom.await(t, `aima_service_status{service="`+svc.ID+`",status="running"}`, equals(1))
	// Prometheus saw the failed status between the crash and the restart
	// (the back-off holds it failed for a second, a scrape interval).
	prom.await(t, `max_over_time(aima_service_status{service="`+svc.ID+`",status="failed"}[5m])`, equals(1))
	for _, p := range services.StartPhases {
		prom.await(t, fmt.Sprintf(`sum(aima_service_start_phase_duration_seconds_count{engine="vllm",phase=%q,outcome="ok"})`, p), equals(2))
	}
	prom.await(t, `vllm:num_requests_running{aima_service="`+svc.ID+`"}`, func(r []promSample) bool { return len(r) == 1 })
	prom.await(t, `sum(aima_operations_total{operation="service_start",frontend="cli",kind="ok"})`, equals(1))
	// An inference request through the gateway shows in aima's counters
	// and in the engine's own.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, d.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"qwen-tiny","messages":[{"role":"user","content":"one two three"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat through the gateway: %d", resp.StatusCode)
	}
	prom.await(t, `aima_gateway_requests_total{service="`+svc.ID+`",endpoint="/v1/chat/completions",code="200"}`, equals(1))
	prom.await(t, `vllm:generation_tokens_total{aima_service="`+svc.ID+`"}`, func(r []promSample) bool { return len(r) == 1 && r[0].value() > 0 })
	// service_metrics reads the same engine through the same client.
	fig := call[enginemetrics.Figures](t, d.URL, "", "service_metrics", tools.ServiceRef{ServiceID: svc.ID})
	if !fig.ScrapeOK || fig.RequestsRunning == nil || fig.RequestsWaiting == nil || fig.KVCacheUsage == nil ||
		fig.GenerationTokensTotal == nil || *fig.GenerationTokensTotal < 3 || fig.GenerationTokensPerSecond == nil || fig.RateWindowSeconds < 1 {
		t.Errorf("service_metrics: %+v", fig)
	}
	if up := prom.query(t, `up`); len(up) != 2 || up[0].value() != 1 || up[1].value() != 1 {
		t.Errorf("scrape targets up: %+v", up)
	}
	call[services.Service](t, d.URL, "", "service_delete", tools.ServiceRef{ServiceID: svc.ID})
	resp, err = http.Get(d.URL + "/metrics")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/metrics without the token: %d", resp.StatusCode)
		}
	}
}
