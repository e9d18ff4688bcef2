// Package fakeengine is an engine stand-in for unit tests of sleep, wake,
// admission and swaps: an httptest server that answers vLLM's sleep
// endpoints and logs the calls in order, with gates a test closes to let
// a call finish. No Docker.
package fakeengine

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// Engine is one fake engine.
type Engine struct {
	Srv       *httptest.Server
	Port      int
	Calls     *CallLog
	Name      string
	Gate      chan struct{} // when set, a wake waits for it
	SleepGate chan struct{} // when set, a sleep waits for it
	Sleeping  chan struct{} // when set, closed as a sleep call arrives
	Wakes     atomic.Int32  // wake calls that arrived (before the gate)
}

// CallLog is the calls of one or more engines, in order ("a sleep", "b wake").
type CallLog struct {
	mu    sync.Mutex
	calls []string
}

// Add logs one call.
func (l *CallLog) Add(s string) {
	l.mu.Lock()
	l.calls = append(l.calls, s)
	l.mu.Unlock()
}

// List is every call so far.
func (l *CallLog) List() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// Count is how often s was logged.
func (l *CallLog) Count(s string) int {
	n := 0
	for _, c := range l.List() {
		if c == s {
			n++
		}
	}
	return n
}

// New starts an engine named name that logs its calls to log; the test's
// cleanup stops it. Set the gates before the call they hold.
func New(t testing.TB, name string, log *CallLog) *Engine {
	t.Helper()
	f := &Engine{Calls: log, Name: name}
	f.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sleep":
			if f.Sleeping != nil {
				close(f.Sleeping)
				f.Sleeping = nil
			}
			if f.SleepGate != nil {
				<-f.SleepGate
			}
			log.Add(name + " sleep")
		case "/wake_up":
			f.Wakes.Add(1)
			if f.Gate != nil {
				<-f.Gate
			}
			log.Add(name + " wake")
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(f.Srv.Close)
	_, p, _ := net.SplitHostPort(f.Srv.Listener.Addr().String())
	f.Port, _ = strconv.Atoi(p)
	return f
}
