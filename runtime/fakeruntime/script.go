package fakeruntime

import "time"

// Script is what a container's process does once started: its steps in
// order, then it keeps running (a hang, unless a step exited) until it is
// stopped or killed. The zero Script runs silently, never healthy.
type Script struct {
	Steps []Step
	// TermExit is the exit code after SIGTERM (a stop); 0, a graceful
	// shutdown, by default.
	TermExit int
	// TermDelay is how long the process takes to exit after SIGTERM; when
	// the stop's timeout passes first it is SIGKILLed (exit 137).
	TermDelay time.Duration
	// IgnoreTerm makes SIGTERM do nothing: a stop ends it with SIGKILL
	// after the stop's timeout.
	IgnoreTerm bool
}

// Step is one thing the process does, after an optional wait.
type Step struct {
	// After is waited first (on the wall clock; keep it short in tests).
	After time.Duration
	// Until, if set, is waited for next (closed by the test), so a test
	// decides the moment exactly.
	Until <-chan struct{}
	// UntilServed waits until the engine has answered 200 to a request in
	// this run: "after a client saw it ready".
	UntilServed bool
	// Do is the action; ActNone only waits.
	Do     Action
	Stream string // for ActLog: "stdout" (default) or "stderr"
	Text   string // for ActLog
	Code   int    // for ActExit
}

// Action is what a Step does.
type Action int

// The actions.
const (
	ActNone      Action = iota
	ActLog              // print Text on Stream
	ActHealthy          // the engine answers HTTP 200
	ActUnhealthy        // the engine answers HTTP 503 (alive but failing: wedged)
	ActExit             // the process exits with Code
	ActOOM              // the kernel kills it for memory: an oom event, then exit 137
)

// Log prints a line on stdout.
func Log(text string) Step { return Step{Do: ActLog, Stream: "stdout", Text: text} }

// Stderr prints a line on stderr.
func Stderr(text string) Step { return Step{Do: ActLog, Stream: "stderr", Text: text} }

// Healthy makes the engine answer 200 on every path.
func Healthy() Step { return Step{Do: ActHealthy} }

// Unhealthy makes the engine answer 503 while the process keeps running.
func Unhealthy() Step { return Step{Do: ActUnhealthy} }

// Exit ends the process with code.
func Exit(code int) Step { return Step{Do: ActExit, Code: code} }

// OOM has the kernel kill the process for memory.
func OOM() Step { return Step{Do: ActOOM} }

// Sleep waits d.
func Sleep(d time.Duration) Step { return Step{After: d} }

// Served waits until the engine has answered a request with 200, so what
// follows (a crash, a wedge) happens after a readiness probe saw it ready.
func Served() Step { return Step{UntilServed: true} }

// Gate waits until ch is closed.
func Gate(ch <-chan struct{}) Step { return Step{Until: ch} }

// Serve is an engine that prints lines, then is healthy until stopped.
func Serve(lines ...string) Script {
	var s Script
	for _, l := range lines {
		s.Steps = append(s.Steps, Log(l))
	}
	s.Steps = append(s.Steps, Healthy())
	return s
}
