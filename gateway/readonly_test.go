package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/runtime"
	"aima/services"
)

// TestReadOnlyServesOnlyWhatRuns: a read-only daemon's /v1 answers with a
// service that runs, and refuses a request that would start an on-demand
// service with the error every front-end gives for what read-only mode
// disables (errs.ReadOnly): no container is made.
func TestReadOnlyServesOnlyWhatRuns(t *testing.T) {
	testenv.RequireDocker(t)
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{})
	d := daemontest.Start(t, cfg, daemontest.Options{ReadOnly: true})
	g := &gw{Daemon: d, ai: openai.NewClient(option.WithBaseURL(d.URL+"/v1/"), option.WithAPIKey("sk-unused"), option.WithMaxRetries(0))}
	// The records are made through the manager: the daemon's operations
	// refuse to in read-only mode, which is the point.
	running := g.service(t, services.CreateSpec{ModelID: g.model(t, "ro-running")})
	g.start(t, running.ID)
	od := g.service(t, services.CreateSpec{ModelID: g.model(t, "ro-ondemand"), OnDemand: true})

	g.mustChat(t, "ro-running", "served")

	for _, stream := range []bool{false, true} {
		body := `{"model":"ro-ondemand","stream":` + map[bool]string{true: "true", false: "false"}[stream] + `,"messages":[{"role":"user","content":"hi"}]}`
		resp, err := http.Post(g.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Message, Type, Code string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || e.Error.Code != "invalid_argument" || !strings.Contains(e.Error.Message, "is disabled: aima runs in read-only mode") {
			t.Fatalf("stream=%v: HTTP %d %+v; want 400 invalid_argument, read-only mode", stream, resp.StatusCode, e.Error)
		}
	}
	if s := g.get(t, od.ID); s.Status != services.StatusCreated {
		t.Fatalf("the on-demand service is %s (%s), want created", s.Status, s.Reason)
	}
	list, err := g.Domain.Runtime.ListContainers(t.Context(), runtime.ListOptions{Labels: map[string]string{runtime.LabelService: od.ID}})
	if err != nil || len(list) != 0 {
		t.Fatalf("containers of the on-demand service: %v, %v", list, err)
	}
}
