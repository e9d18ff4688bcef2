package daemontest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"aima/client"
	"aima/errs"
	"aima/events"
	"aima/internal/testenv"
	"aima/runtime"
	"aima/runtime/fakeruntime"
	"aima/services"
	"aima/tools"
)

// The tests here run the whole daemon (its constructor and start-up path)
// on the fake runtime: no Docker, so they run in -short too.

const fakeImage = "fake/vllm:1"

// fakeDaemon starts a daemon on fr, with short probe periods; dataDir
// empty means a fresh one.
func fakeDaemon(t *testing.T, fr *fakeruntime.Runtime, dataDir string, readOnly bool) *Daemon {
	t.Helper()
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Image: fakeImage,
		Extra: "health_interval: 5ms\nliveness_interval: 20ms\nunhealthy_grace: 1h\n"})
	return Start(t, cfg, Options{Runtime: fr, DataDir: dataDir, ReadOnly: readOnly})
}

func newFake(t *testing.T) *fakeruntime.Runtime {
	fr := fakeruntime.New(fakeruntime.WithImages(fakeImage))
	t.Cleanup(fr.Close)
	return fr
}

func call[T any](t *testing.T, d *Daemon, op string, in any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	raw, err := client.New(d.URL).Call(ctx, op, in, nil)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	var out T
	if err := client.Decode(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// await waits (service_wait) until the service has status want.
func await(t *testing.T, d *Daemon, id string, want services.Status) services.Service {
	t.Helper()
	return call[services.Service](t, d, "service_wait", tools.ServiceWaitInput{ServiceID: id, For: string(want), TimeoutSeconds: 30})
}

func post(t *testing.T, url, contentType, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The daemon serves every front-end itself: the HTTP API, MCP at /mcp and
// JSON-RPC at /rpc, read-only when asked.
func TestFrontEndsMounted(t *testing.T) {
	t.Parallel()
	for _, readOnly := range []bool{false, true} {
		d := fakeDaemon(t, newFake(t), "", readOnly)
		if d.Domain.ReadOnly != readOnly {
			t.Errorf("Env.ReadOnly = %v", d.Domain.ReadOnly)
		}
		resp, err := http.Get(d.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/health: %d", resp.StatusCode)
		}
		code, body := post(t, d.URL+"/rpc", "application/json", `{"jsonrpc":"2.0","id":1,"method":"service.list"}`, nil)
		if code != http.StatusOK || !strings.Contains(body, `"total":0`) {
			t.Errorf("/rpc: %d %s", code, body)
		}
		code, body = post(t, d.URL+"/rpc", "application/json", `{"jsonrpc":"2.0","id":1,"method":"service.create","params":{}}`, nil)
		if readOnly != strings.Contains(body, "-32601") {
			t.Errorf("/rpc service.create (read-only %v): %d %s", readOnly, code, body)
		}
		code, body = post(t, d.URL+"/mcp", "application/json",
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
			map[string]string{"Accept": "application/json, text/event-stream"})
		if code != http.StatusOK || !strings.Contains(body, "protocolVersion") {
			t.Errorf("/mcp initialize: %d %s", code, body)
		}
	}
}

// A start through the daemon runs on the injected runtime, and the
// daemon's watchers run: the runtime's events fail a service whose
// container dies, and the liveness probe sees a failing engine.
func TestWatchersRun(t *testing.T) {
	t.Parallel()
	fr := newFake(t)
	d := fakeDaemon(t, fr, "", false)
	mk := func(name string) services.Service {
		s := call[services.Service](t, d, "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm", Name: name})
		call[tools.StartOutput](t, d, "service_start", tools.ServiceStartInput{ServiceID: s.ID, Wait: true, TimeoutSeconds: 30})
		return await(t, d, s.ID, services.StatusRunning)
	}
	dies, wedges := mk("dies"), mk("wedges")
	if err := fr.Exit(dies.ContainerID, 1); err != nil {
		t.Fatal(err)
	}
	if got := await(t, d, dies.ID, services.StatusFailed); got.Failure != services.FailureExited {
		t.Errorf("after the exit: %+v", got)
	}
	if err := fr.SetHealthy(wedges.ContainerID, false); err != nil {
		t.Fatal(err)
	}
	// Follow its events until the liveness probe's unhealthy status.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	unhealthy := false
	_, err := client.New(d.URL).Call(ctx, "service_events", tools.ServiceEventsInput{ServiceID: wedges.ID, Follow: true},
		&client.Stream{OnEvent: func(ev events.Event) {
			if ev.Type == events.TypeStatus && ev.Status == string(services.StatusUnhealthy) {
				unhealthy = true
				cancel()
			}
		}})
	if !unhealthy {
		t.Fatalf("no unhealthy status event: %v", err)
	}
}

// Start-up reconciles before the daemon serves: a service whose container
// died while no daemon ran is failed on the first request.
func TestStartUpReconcile(t *testing.T) {
	t.Parallel()
	fr := newFake(t)
	first := fakeDaemon(t, fr, "", false)
	s := call[services.Service](t, first, "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm"})
	call[tools.StartOutput](t, first, "service_start", tools.ServiceStartInput{ServiceID: s.ID, Wait: true, TimeoutSeconds: 30})
	running := await(t, first, s.ID, services.StatusRunning)
	first.Stop()
	if c := fr.Containers(map[string]string{runtime.LabelService: s.ID}); len(c) != 1 || !c[0].Running {
		t.Fatalf("the daemon's stop touched the container: %+v", c)
	}
	if err := fr.OOMKill(running.ContainerID); err != nil {
		t.Fatal(err)
	}
	second := fakeDaemon(t, fr, first.DataDir, false)
	got := call[services.Service](t, second, "service_status", tools.ServiceRef{ServiceID: s.ID})
	if got.Status != services.StatusFailed || got.Failure != services.FailureOOM {
		t.Fatalf("first status after the restart: %+v", got)
	}
	raw, _ := json.Marshal(got)
	if !strings.Contains(string(raw), `"failure":"oom"`) {
		t.Errorf("record JSON %s", raw)
	}
}

// A delete ends, with not_found, every wait and follow of the service: a
// service_wait, a service_events follow (what `aima service events
// --follow` runs) and the raw /api/events stream, each open on a start
// that would load for an hour.
func TestDeleteEndsWaitsAndStreams(t *testing.T) {
	t.Parallel()
	fr := newFake(t)
	d := fakeDaemon(t, fr, "", false)
	s := call[services.Service](t, d, "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm"})
	fr.SetScript(map[string]string{runtime.LabelService: s.ID}, fakeruntime.Script{Steps: []fakeruntime.Step{fakeruntime.Log("loading")}})
	call[tools.StartOutput](t, d, "service_start", tools.ServiceStartInput{ServiceID: s.ID})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	ended := make(chan error, 3)
	go func() {
		_, err := client.New(d.URL).Call(ctx, "service_wait", tools.ServiceWaitInput{ServiceID: s.ID, For: "running"}, nil)
		ended <- err
	}()
	followed := make(chan events.Event, 100)
	go func() {
		_, err := client.New(d.URL).Call(ctx, "service_events", tools.ServiceEventsInput{ServiceID: s.ID, Follow: true},
			&client.Stream{OnEvent: func(ev events.Event) { followed <- ev }})
		ended <- err
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL+"/api/events?service_id="+s.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(resp.Body) // until the daemon ends the stream
		sse <- string(b)
	}()
	// Both followers are in (the follow has replayed the history) before
	// the delete.
	for ev := range followed {
		if ev.Type == events.TypePhase && ev.Phase == string(services.PhaseLoading) {
			break
		}
	}
	call[services.Service](t, d, "service_delete", tools.ServiceRef{ServiceID: s.ID})
	// (The wait may also have begun only after the delete: not_found too.)
	for range 2 {
		select {
		case err := <-ended:
			if errs.KindOf(err) != errs.NotFound {
				t.Errorf("a wait or follow ended with %v, want not_found", err)
			}
		case <-ctx.Done():
			t.Fatal("a wait or follow did not end with the delete")
		}
	}
	select {
	case body := <-sse:
		if !strings.Contains(body, `"type":"deleted"`) || !strings.Contains(body, "event: error") || !strings.Contains(body, `"code":"not_found"`) {
			t.Errorf("/api/events stream: %s", body)
		}
	case <-ctx.Done():
		t.Fatal("/api/events did not end with the delete")
	}
}
