package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"aima/client"
	"aima/events"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/services"
	"aima/tools"
)

// callTimeout bounds one API call of a test (a start with wait included).
const callTimeout = 3 * time.Minute

// inproc is an in-process daemon (daemontest: daemon.New and Serve, the
// start-up path of `aima start`, on a loopback port), driven through the
// aima client: the same path the CLI takes, without the subprocess.
type inproc struct {
	*daemontest.Daemon
	c       *client.Client
	modelID string
}

// newInproc starts an in-process daemon whose vllm engine is the simulator
// image (see testenv.SimConfig), with one registered model. It skips in
// -short mode and fails without Docker.
func newInproc(tb testing.TB) *inproc {
	tb.Helper()
	testenv.RequireDocker(tb)
	return newInprocWithImage(tb, testenv.EngineSimImage(tb))
}

// newInprocWithImage is newInproc with another vllm image (e.g. one in a
// loopback registry).
func newInprocWithImage(tb testing.TB, image string) *inproc {
	tb.Helper()
	d := daemontest.Start(tb, testenv.SimConfig(tb, testenv.SimConfigOptions{Image: image}), daemontest.Options{})
	p := &inproc{Daemon: d, c: client.New(d.URL)}
	p.modelID = p.addModel(tb, testenv.MakeModel(tb, "qwen-tiny"))
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
