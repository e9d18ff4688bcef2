package services

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"aima/engines"
	"aima/errs"
	"aima/runtime"
)

// waitReady watches the started container until the engine's health
// endpoint answers 200. It fails at once when the container exits, with its
// exit code, OOM flag, last log lines and the engine's own error line.
func (st *starter) waitReady(ctx context.Context) *failure {
	m, s := st.m, st.s
	exited := m.rt.WaitExit(ctx, st.containerID)
	// Docker's "die" event comes tens of milliseconds before a wait returns
	// (the engine answers waits only after tearing down the network), so
	// watch both and take whichever is first.
	crashed := make(chan *failure, 3) // a panic in one of the goroutines below
	died, oomSeen := st.watchDie(ctx, crashed)
	readyLine := make(chan struct{}, 1)
	logCtx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	followed := &logRing{ended: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer st.containPart("following the engine's log", crashed)
		st.followMilestones(logCtx, readyLine, followed)
	}()
	healthy := make(chan struct{})
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	url := "http://" + net.JoinHostPort(m.opts.BindHost, strconv.Itoa(s.Port)) + st.eng.HealthPath
	startProbe := func() {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer st.containPart("probing the engine's health", crashed)
			if m.probeUntilHealthy(probeCtx, url) {
				close(healthy)
			}
		}()
	}
	// An engine whose health endpoint may say 200 before it is warm
	// (ReadyNeedsLine) is probed only once it printed its ready line.
	if !st.eng.ReadyNeedsLine {
		startProbe()
	}
	inHealthCheck := false
	var rewatch <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return &failure{kind: FailureInterrupted, reason: "interrupted"}
		case f := <-crashed:
			_ = m.rt.StopContainer(context.WithoutCancel(ctx), st.containerID, runtime.StopOptions{Timeout: 2 * time.Second})
			return f
		case ex := <-exited:
			if errs.Is(ex.Err, errs.Unavailable) {
				// The Docker API went away, not the container: keep
				// probing the engine and watch the container again once
				// the API answers (an exit meanwhile is reported then).
				exited, rewatch = nil, time.After(m.rewatchDelay)
				continue
			}
			return st.exitFailure(ex, oomSeen(), nil)
		case <-rewatch:
			rewatch = nil
			exited = m.rt.WaitExit(ctx, st.containerID)
		case ex := <-died:
			return st.exitFailure(ex, oomSeen(), followed)
		case <-readyLine:
			if !inHealthCheck {
				inHealthCheck = true
				_ = st.enter(ctx, PhaseHealthCheck, "engine reports ready; checking "+st.eng.HealthPath)
				if st.eng.ReadyNeedsLine {
					startProbe()
				}
			}
		case <-healthy:
			if !inHealthCheck {
				_ = st.enter(ctx, PhaseHealthCheck, "checking "+st.eng.HealthPath)
			}
			m.message(s.ID, s.Run, PhaseHealthCheck, "GET "+st.eng.HealthPath+" answered 200")
			return nil
		}
	}
}

// watchDie delivers the container's "die" event (with its exit code) and
// remembers an "oom" event before it.
func (st *starter) watchDie(ctx context.Context, crashed chan<- *failure) (<-chan runtime.ExitStatus, func() bool) {
	out := make(chan runtime.ExitStatus, 1)
	var oom atomic.Bool
	evs, errc := st.m.rt.Events(ctx, runtime.EventOptions{Labels: map[string]string{runtime.LabelService: st.s.ID}})
	st.m.wg.Add(1)
	go func() {
		defer st.m.wg.Done()
		defer st.containPart("watching the container's events", crashed)
		for {
			select {
			case ev, ok := <-evs:
				if !ok {
					return
				}
				if ev.ContainerID != st.containerID {
					continue
				}
				switch ev.Action {
				case runtime.ActionOOM:
					oom.Store(true)
				case runtime.ActionDie:
					out <- runtime.ExitStatus{ExitCode: ev.ExitCode, Reason: ev.Reason, Message: ev.Message}
					return
				}
			case <-errc:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, oom.Load
}

// logRing keeps the last lines of the followed log, so a failure right
// after an exit needs no further Docker call (inspect and logs block until
// Docker has torn the container's network down, ~100 ms on Docker 20.10).
type logRing struct {
	mu    sync.Mutex
	lines []string
	ended chan struct{} // closed when the container's output ended
}

func (r *logRing) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
	if len(r.lines) >= 2*reasonScanLines {
		r.lines = append(r.lines[:0:0], r.lines[len(r.lines)-reasonScanLines:]...)
	}
}

// complete returns the last lines once the output has ended (within
// a short wait), or false.
func (r *logRing) complete() ([]string, bool) {
	select {
	case <-r.ended:
	case <-time.After(250 * time.Millisecond):
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines[max(0, len(r.lines)-reasonScanLines):]...), true
}

// exitFailure turns a container exit during a start into a failure. With
// the followed log (the die-event path), exit code and OOM flag come from
// Docker's events and the lines from the log already read, so the failure is
// recorded without waiting for Docker's teardown.
func (st *starter) exitFailure(ex runtime.ExitStatus, oomEvent bool, followed *logRing) *failure {
	m := st.m
	bg, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ex.Err != nil && ex.Reason == "" {
		return &failure{kind: runtimeFailure(ex.Err), reason: fmt.Sprintf("lost track of the container: %v", ex.Err)}
	}
	if ex.Err != nil { // gone, and the runtime says why (Kubernetes: deleted, node lost)
		f := &failure{kind: FailureDisappeared, reason: endWhat(ex.Reason, "container removed") + " during " + string(st.phase)}
		f.typedEnd(ex.Reason, ex.Message)
		return f
	}
	code := ex.ExitCode
	f := &failure{exitCode: &code, oom: oomEvent}
	var lines []string
	ok := false
	if followed != nil {
		lines, ok = followed.complete()
	}
	if !ok {
		info, err := m.rt.InspectContainer(bg, st.containerID)
		if err == nil && !info.Running {
			f.oom = f.oom || info.OOMKilled
			code = info.ExitCode
		}
		info.ID = st.containerID
		lines = m.endLines(bg, info, st.eng)
	}
	f.reason = fmt.Sprintf("%s during %s", endWhat(ex.Reason, fmt.Sprintf("container exited with code %d%s", code, ExitDescription(code))), st.phase)
	f.kind = exitKind(f.oom)
	f.typedEnd(ex.Reason, ex.Message)
	f.explain(lines, st.eng)
	if f.rule != nil && f.rule.PortInUse && !f.oom {
		f.kind = FailurePortInUse
	}
	return f
}

// failureLines returns the last lines of a container's output a failure is
// explained from (see explain).
func (m *Manager) failureLines(ctx context.Context, containerID string) []string {
	return m.tail(ctx, containerID, reasonScanLines)
}

// explain completes a failure from the last lines of the run's output, the
// same way wherever the run ended (during a start, while running, while the
// daemon was down): the record keeps the last keptLogLines of them, and the
// reason gets " (OOM killed)" when the kernel killed the engine, then the
// engine's own error line (ReasonFromLogs: the root cause, not a wrapper
// that points at it). The root cause can sit far above the last lines: vLLM
// ends an engine failure with a ~40-line API-server traceback that only
// says where to look, so the line is looked for in all of lines
// (reasonScanLines), more than the record keeps. The engine's own failure
// rules (engines.Engine.Failures) pick the line first; ReasonFromLogs is
// the fallback for failures no rule knows.
func (f *failure) explain(lines []string, eng engines.Engine) {
	f.logTail = keptTail(lines)
	f.engineLine, f.rule = EngineFailureLine(eng, lines)
	if f.oom {
		f.reason += " (OOM killed)"
	}
	if f.engineLine != "" {
		f.reason += ": " + f.engineLine
	}
}

// keptTail is the part of a run's last lines a failed record keeps.
func keptTail(lines []string) []string { return lines[max(0, len(lines)-keptLogLines):] }

// keptLogLines is how many last log lines a failed run's record keeps.
const keptLogLines = 30

// reasonScanLines is how many last log lines a failure's reason is
// looked for in.
const reasonScanLines = 200

// endLines returns the lines the failure of an ended container is
// explained from: the output the runtime handed over with the end (the
// kubelet's termination message, ContainerState.LastOutput) when one of
// the engine's failure rules names the failure in it, else the last
// reasonScanLines lines of its log. The handed-over part is a few KiB: a
// root cause far above the last lines (vLLM's traceback) is only in the
// log, so without a rule's match the log is read. A Pod's end is then
// explained from its watch event alone, without a pods/log request.
func (m *Manager) endLines(ctx context.Context, c runtime.ContainerState, eng engines.Engine) []string {
	if len(c.LastOutput) > 0 {
		if _, rule := eng.Diagnose(c.LastOutput); rule != nil {
			return c.LastOutput
		}
	}
	return m.failureLines(ctx, c.ID)
}

// tail returns the last n log lines of a container, as text.
func (m *Manager) tail(ctx context.Context, id string, n int) []string {
	var out []string
	_ = m.rt.Logs(ctx, id, runtime.LogOptions{Tail: n}, func(l runtime.LogLine) error {
		out = append(out, l.Text)
		return nil
	})
	return out
}

// followMilestones reads the engine's log while it loads and publishes its
// milestones; it signals readyLine on the engine's "serving" line.
func (st *starter) followMilestones(ctx context.Context, readyLine chan<- struct{}, ring *logRing) {
	m, s := st.m, st.s
	err := m.rt.Logs(ctx, st.containerID, runtime.LogOptions{Follow: true, Tail: -1}, func(l runtime.LogLine) error {
		ring.add(l.Text)
		for _, ms := range st.eng.Milestones {
			if idx := ms.Pattern.FindStringSubmatchIndex(l.Text); idx != nil {
				msg := string(ms.Pattern.ExpandString(nil, ms.Message, l.Text, idx))
				m.message(s.ID, s.Run, PhaseLoading, msg)
				break
			}
		}
		if st.eng.ReadyLine != nil && st.eng.ReadyLine.MatchString(l.Text) {
			select {
			case readyLine <- struct{}{}:
			default:
			}
		}
		return nil
	})
	if err == nil {
		close(ring.ended) // the output ended with the process, not with us
	}
}

// probeUntilHealthy polls url until it answers 200 (true) or ctx ends.
// A TCP connect is not readiness: Docker's proxy accepts connections before
// the engine listens, so only an HTTP 200 counts.
func (m *Manager) probeUntilHealthy(ctx context.Context, url string) bool {
	t := time.NewTicker(m.opts.HealthInterval)
	defer t.Stop()
	for {
		if m.probe(ctx, url) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// probe does one health request.
func (m *Manager) probe(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// engineOf is the catalog's engine of a type (the zero Engine, which knows
// no failure lines, for a type the catalog no longer has).
func (m *Manager) engineOf(engineType string) engines.Engine {
	eng, _ := m.catalog.Get(engineType)
	return eng
}
