package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/mcp"
	"aima/runtime/fakeruntime"
)

// updates records notifications/resources/updated with their arrival time.
type updates struct {
	mu   sync.Mutex
	uris []string
	at   []time.Time
}

func (u *updates) handler(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.uris = append(u.uris, req.Params.URI)
	u.at = append(u.at, time.Now())
}

// after returns the arrival time of the first update of uri after t0.
func (u *updates) after(uri string, t0 time.Time) (time.Time, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, x := range u.uris {
		if x == uri && !u.at[i].Before(t0) {
			return u.at[i], true
		}
	}
	return time.Time{}, false
}

// fakeDaemonURL is an in-process daemon on the fake runtime: services start
// in milliseconds without Docker.
func fakeDaemonURL(t *testing.T) string {
	t.Helper()
	fr := fakeruntime.New(fakeruntime.WithImages("fake/vllm:1"))
	t.Cleanup(fr.Close)
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Image: "fake/vllm:1", Extra: "health_interval: 5ms\n"})
	return daemontest.Start(t, cfg, daemontest.Options{Runtime: fr}).URL
}

// Resources, subscriptions, prompts and completions with the official
// go-sdk client, over stdio (`aima mcp` relaying to the daemon) and over
// HTTP (/mcp in the daemon), in both protocol eras. A subscribed client
// hears of a status change within a second.
func TestResourcesPromptsCompletions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the aima binary")
	}
	bin := testenv.BuildAima(t)
	url := fakeDaemonURL(t)
	modelDir := testenv.MakeModel(t, "qwen-resources")
	transports := map[string]func() sdk.Transport{
		"stdio": func() sdk.Transport {
			return &sdk.CommandTransport{Command: exec.Command(bin, "--addr", url, "mcp")}
		},
		"http": func() sdk.Transport {
			return &sdk.StreamableClientTransport{Endpoint: url + mcp.Path, MaxRetries: -1}
		},
	}
	for _, tname := range []string{"stdio", "http"} {
		for _, version := range eras {
			t.Run(tname+"/"+version, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
				defer cancel()
				up := &updates{}
				rec := newRecorder()
				opts := rec.options()
				opts.ResourceUpdatedHandler = up.handler
				cl := sdk.NewClient(&sdk.Implementation{Name: "aima-test", Version: "1"}, opts)
				cs, err := cl.Connect(ctx, transports[tname](), &sdk.ClientSessionOptions{ProtocolVersion: version})
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				defer cs.Close()
				checkResources(ctx, t, cs, up, modelDir, url)
			})
		}
	}
}

func checkResources(ctx context.Context, t *testing.T, cs *sdk.ClientSession, up *updates, modelDir, daemonURL string) {
	t.Helper()
	model := call(ctx, t, cs, "model_add", map[string]any{"path": modelDir})
	modelID := model["id"].(string)
	svc := call(ctx, t, cs, "service_create", map[string]any{"model_id": modelID, "engine_type": "vllm"})
	id := svc["id"].(string)

	tpls, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, tp := range tpls.ResourceTemplates {
		uris = append(uris, tp.URITemplate)
	}
	slices.Sort(uris)
	if strings.Join(uris, " ") != "aima://models/{id} aima://services/{id} aima://services/{id}/logs" {
		t.Errorf("resource templates %v", uris)
	}
	svcURI := "aima://services/" + id
	res, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: svcURI})
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if len(res.Contents) != 1 || json.Unmarshal([]byte(res.Contents[0].Text), &rec) != nil || rec["id"] != id || rec["status"] != "created" ||
		res.Contents[0].MIMEType != "application/json" {
		t.Fatalf("read %s: %+v", svcURI, res.Contents)
	}
	if res, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "aima://models/" + modelID}); err != nil || !strings.Contains(res.Contents[0].Text, modelID) {
		t.Fatalf("read model: %v %+v", err, res)
	}
	if res, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: svcURI + "/logs"}); err != nil || res.Contents[0].MIMEType != "text/plain" {
		t.Fatalf("read logs: %v %+v", err, res)
	}
	if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "aima://services/svc-nope"}); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("read an unknown service: %v", err)
	}

	// Subscribe, then start: the status change (created → creating, then
	// running) reaches the client within a second. The subscription's watch
	// first reads the service's history (a service_events call, counted by
	// the daemon's metrics) and then follows from its newest event, so once
	// that call is counted no later change can be missed. The subscribe
	// call is not waited for: in 2026-07-28 a subscription is a listen
	// stream that a client may hold open for as long as it listens; an
	// error from it fails the test.
	before := eventsCalls(ctx, t, daemonURL)
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	subscribed := make(chan error, 1)
	go func() { subscribed <- cs.Subscribe(subCtx, &sdk.SubscribeParams{URI: svcURI}) }()
	waitFor(ctx, t, "the subscription's watch to read the history", func() bool {
		select {
		case err := <-subscribed:
			if err != nil {
				t.Fatalf("subscribe: %v", err)
			}
		default:
		}
		return eventsCalls(ctx, t, daemonURL) > before
	}, nil)
	t0 := time.Now()
	call(ctx, t, cs, "service_start", map[string]any{"service_id": id})
	waitFor(ctx, t, "notifications/resources/updated for "+svcURI, func() bool { _, ok := up.after(svcURI, t0); return ok }, nil)
	if at, _ := up.after(svcURI, t0); at.Sub(t0) > time.Second {
		t.Errorf("update %v after the status change, want within 1 s", at.Sub(t0))
	}
	if err := cs.Unsubscribe(ctx, &sdk.UnsubscribeParams{URI: svcURI}); err != nil {
		t.Errorf("unsubscribe: %v", err)
	}

	prompts, err := cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range prompts.Prompts {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if strings.Join(names, " ") != "deploy-model diagnose-service" {
		t.Errorf("prompts %v", names)
	}
	diag, err := cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "diagnose-service", Arguments: map[string]string{"service_id": id}})
	if err != nil {
		t.Fatal(err)
	}
	all := promptText(diag)
	if len(diag.Messages) != 4 || !strings.Contains(all, id) || !strings.Contains(all, `"status"`) || !strings.Contains(all, "History") || !strings.Contains(all, "phase") {
		t.Errorf("diagnose-service: %d messages:\n%s", len(diag.Messages), all)
	}
	dep, err := cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "deploy-model", Arguments: map[string]string{"model_id": modelID}})
	if err != nil || !strings.Contains(promptText(dep), "service_create") || !strings.Contains(promptText(dep), modelID) {
		t.Errorf("deploy-model: %v\n%s", err, promptText(dep))
	}
	if _, err := cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "diagnose-service", Arguments: map[string]string{"service_id": "svc-nope"}}); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("diagnose an unknown service: %v", err)
	}

	comp, err := cs.Complete(ctx, &sdk.CompleteParams{Ref: &sdk.CompleteReference{Type: "ref/prompt", Name: "diagnose-service"},
		Argument: sdk.CompleteParamsArgument{Name: "service_id", Value: id[:5]}})
	if err != nil || !slices.Contains(comp.Completion.Values, id) {
		t.Errorf("complete service_id %q: %v %+v", id[:5], err, comp)
	}
	comp, err = cs.Complete(ctx, &sdk.CompleteParams{Ref: &sdk.CompleteReference{Type: "ref/resource", URI: "aima://models/{id}"},
		Argument: sdk.CompleteParamsArgument{Name: "id", Value: "m-"}})
	if err != nil || !slices.Contains(comp.Completion.Values, modelID) {
		t.Errorf("complete model id: %v %+v", err, comp)
	}
	comp, err = cs.Complete(ctx, &sdk.CompleteParams{Ref: &sdk.CompleteReference{Type: "ref/prompt", Name: "deploy-model"},
		Argument: sdk.CompleteParamsArgument{Name: "model_id", Value: "zzz"}})
	if err != nil || len(comp.Completion.Values) != 0 {
		t.Errorf("complete with no match: %v %+v", err, comp)
	}
}

func promptText(r *sdk.GetPromptResult) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	for _, m := range r.Messages {
		if tc, ok := m.Content.(*sdk.TextContent); ok {
			b.WriteString(tc.Text + "\n---\n")
		}
	}
	return b.String()
}

// eventsCallsLine is one of the daemon's counts of service_events calls
// that ended well, by front-end: a watch of a 2025-11-25 session on /mcp
// runs outside the request that subscribed, so it counts as http.
var eventsCallsLine = regexp.MustCompile(`(?m)^aima_operations_total\{frontend="[a-z]+",kind="ok",operation="service_events"\} (\S+)$`)

// eventsCalls reads from the daemon's /metrics how many service_events
// calls ended well, on every front-end together.
func eventsCalls(ctx context.Context, t *testing.T, daemonURL string) float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, daemonURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	lines := eventsCallsLine.FindAllSubmatch(body, -1)
	if len(lines) == 0 {
		t.Fatalf("/metrics has no service_events counts:\n%.2000s", body)
	}
	total := 0.0
	for _, m := range lines {
		n, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}
