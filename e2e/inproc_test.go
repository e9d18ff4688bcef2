package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/client"
	"aima/daemon"
	"aima/events"
	"aima/httpapi"
	"aima/internal/testenv"
	"aima/services"
	"aima/tools"
)

// callTimeout bounds one API call of a test (a start with wait included).
const callTimeout = 3 * time.Minute

// inproc is an in-process daemon (daemon.Build) served over real HTTP by
// httpapi on an httptest server, driven through the aima client — the same
// path the CLI takes, without the subprocess.
type inproc struct {
	d       *daemon.Daemon
	srv     *httptest.Server
	c       *client.Client
	modelID string
	log     *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the daemon's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newInproc starts an in-process daemon whose vllm engine is the simulator
// image (see writeConfig; env is the engine's default container env), with
// one registered model. It skips in -short mode and fails without Docker.
func newInproc(t *testing.T, env map[string]string) *inproc {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Docker")
	}
	testenv.RequireDocker(t)
	return newInprocWithImage(t, testenv.EngineSimImage(t), env)
}

// newInprocWithImage is newInproc with another vllm image (e.g. one in a
// loopback registry).
func newInprocWithImage(t *testing.T, image string, env map[string]string) *inproc {
	t.Helper()
	p := startInproc(t, writeConfig(t, image, env))
	p.modelID = p.addModel(t, makeModel(t, "qwen-tiny"))
	return p
}

// startInproc builds a daemon from configPath with a fresh data dir and
// serves it; everything is closed when the test ends.
func startInproc(tb testing.TB, configPath string) *inproc {
	tb.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := daemon.Build(daemon.Options{DataDir: filepath.Join(tb.TempDir(), "data"), ConfigPath: configPath, Logger: logger})
	if err != nil {
		tb.Fatalf("daemon.Build: %v", err)
	}
	srv := httptest.NewServer(httpapi.New(d.Env, logger).Handler())
	p := &inproc{d: d, srv: srv, c: client.New(srv.URL), log: logs}
	tb.Cleanup(func() {
		// Cut streams still open (a failed test's wait) so Close returns.
		srv.CloseClientConnections()
		srv.Close()
		d.Close()
		if tb.Failed() {
			tb.Logf("in-process daemon log:\n%s", logs.String())
		}
	})
	return p
}

func (p *inproc) ctx(tb testing.TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(tb.Context(), callTimeout)
}

// try calls op and decodes its output into out (if not nil); events of a
// streaming call go to stream.
func (p *inproc) try(tb testing.TB, op string, in, out any, stream *client.Stream) error {
	tb.Helper()
	ctx, cancel := p.ctx(tb)
	defer cancel()
	raw, err := p.c.Call(ctx, op, in, stream)
	if err != nil {
		return err
	}
	if out != nil {
		if err := client.Decode(raw, out); err != nil {
			tb.Fatalf("%s: %v", op, err)
		}
	}
	return nil
}

// call is try that fails the test on an error.
func (p *inproc) call(tb testing.TB, op string, in, out any) {
	tb.Helper()
	if err := p.try(tb, op, in, out, nil); err != nil {
		tb.Fatalf("%s %+v: %v", op, in, err)
	}
}

func (p *inproc) addModel(tb testing.TB, dir string) string {
	tb.Helper()
	var m struct {
		ID string `json:"id"`
	}
	p.call(tb, "model_add", map[string]any{"path": dir}, &m)
	if m.ID == "" {
		tb.Fatalf("model_add %s returned no id", dir)
	}
	return m.ID
}

// createService creates a vllm service on the harness's model and makes
// sure its containers are removed when the test ends.
func (p *inproc) createService(tb testing.TB, in tools.ServiceCreateInput) services.Service {
	tb.Helper()
	if in.ModelID == "" {
		in.ModelID = p.modelID
	}
	if in.EngineType == "" {
		in.EngineType = "vllm"
	}
	var s services.Service
	p.call(tb, "service_create", in, &s)
	if s.ID == "" || s.Status != services.StatusCreated {
		tb.Fatalf("service_create: %+v", s)
	}
	testenv.RemoveContainersWithLabel(tb, "aima.service", s.ID)
	return s
}

func (p *inproc) status(tb testing.TB, id string) services.Service {
	tb.Helper()
	var s services.Service
	p.call(tb, "service_status", tools.ServiceRef{ServiceID: id}, &s)
	return s
}

// startWait runs service_start with wait=true and returns the output, the
// events the stream delivered, in order, and the call's error.
func (p *inproc) startWait(tb testing.TB, id string, timeoutSeconds int) (tools.StartOutput, []events.Event, error) {
	tb.Helper()
	var out tools.StartOutput
	var evs []events.Event
	err := p.try(tb, "service_start", tools.ServiceStartInput{ServiceID: id, Wait: true, TimeoutSeconds: timeoutSeconds}, &out,
		&client.Stream{OnEvent: func(ev events.Event) { evs = append(evs, ev) }})
	return out, evs, err
}

// waitFor polls service_status until cond holds, failing after timeout.
func (p *inproc) waitFor(tb testing.TB, id string, timeout time.Duration, what string, cond func(services.Service) bool) services.Service {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s := p.status(tb, id)
		if cond(s) {
			return s
		}
		select {
		case <-deadline.C:
			tb.Fatalf("service %s: not %s after %s; last record: status %s phase %s reason %q", id, what, timeout, s.Status, s.Phase, s.Reason)
		case <-tick.C:
		}
	}
}

// logText returns the service's container log (all lines) as one string.
func (p *inproc) logText(tb testing.TB, id string) (tools.LogsOutput, string) {
	tb.Helper()
	all := -1
	var out tools.LogsOutput
	p.call(tb, "service_logs", tools.ServiceLogsInput{ServiceID: id, Tail: &all}, &out)
	texts := make([]string, len(out.Lines))
	for i, l := range out.Lines {
		texts[i] = l.Text
	}
	return out, strings.Join(texts, "\n")
}

// containerStates returns "name state" of every container of the service.
func containerStates(t *testing.T, id string) []string {
	t.Helper()
	return dockerPS(t, "label=aima.service="+id)
}

// runningContainers returns the service's containers in state running.
func runningContainers(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, c := range containerStates(t, id) {
		if strings.HasSuffix(c, " running") {
			out = append(out, c)
		}
	}
	return out
}

// httpGetStatus does one GET of url and returns the HTTP status (0 on a
// transport error).
func httpGetStatus(url string) int {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// phasesOf lists the phase events' phases, in order.
func phasesOf(evs []events.Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == events.TypePhase {
			out = append(out, ev.Phase)
		}
	}
	return out
}

// statusEvent returns the first status event with the given status.
func statusEvent(evs []events.Event, status string) (events.Event, bool) {
	for _, ev := range evs {
		if ev.Type == events.TypeStatus && ev.Status == status {
			return ev, true
		}
	}
	return events.Event{}, false
}
