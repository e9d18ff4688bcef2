package services

import (
	"testing"

	"aima/errs"
)

// A service created without a port holds none until its first start, keeps
// the one it got across stops and starts, and frees it with its record: a
// port range of one port serves any number of created services, one of
// them at a time.
func TestPortsAssignedAtFirstStart(t *testing.T) {
	t.Parallel()
	port := loopbackPort(t)
	h := newHarness(t, func(o *Options) { o.PortLow, o.PortHigh = port, port })
	h.run()
	noPort := func(c *CreateSpec) { c.Port = 0 }
	var ids []string
	for i := 0; i < 50; i++ {
		s := h.create(serving(), noPort)
		if s.Port != 0 || s.Endpoint != "" {
			t.Fatalf("created service %s holds port %d (%q) before any start", s.ID, s.Port, s.Endpoint)
		}
		ids = append(ids, s.ID)
	}
	a, b := ids[0], ids[1]
	h.start(a)
	if got := h.awaitStatus(a, StatusRunning); got.Port != port || got.Endpoint != h.m.endpoint(port) {
		t.Fatalf("first start: port %d endpoint %q, want %d", got.Port, got.Endpoint, port)
	}
	_, err := h.m.Start(h.ctx(), b, 0)
	if errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("start with the range used up: %v, want unavailable (no free host port)", err)
	}
	if got := h.get(b); got.Status != StatusCreated || got.Port != 0 {
		t.Fatalf("a start refused for want of a port left %s %s port %d", got.ID, got.Status, got.Port)
	}
	if _, err := h.m.Stop(h.ctx(), a); err != nil {
		t.Fatal(err)
	}
	h.awaitStatus(a, StatusStopped)
	if _, err := h.m.Start(h.ctx(), b, 0); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("a stopped service keeps its port, yet another start got it: %v", err)
	}
	h.start(a)
	if got := h.awaitStatus(a, StatusRunning); got.Port != port {
		t.Fatalf("restart moved the port from %d to %d", port, got.Port)
	}
	if _, err := h.m.Delete(h.ctx(), a); err != nil {
		t.Fatal(err)
	}
	h.start(b)
	if got := h.awaitStatus(b, StatusRunning); got.Port != port {
		t.Fatalf("the deleted service's port %d was not handed on (got %d)", port, got.Port)
	}
}

// An explicit port is still checked at create: one another service holds
// (asked for, or handed out at its start) is a conflict.
func TestExplicitPortCheckedAtCreate(t *testing.T) {
	t.Parallel()
	port := loopbackPort(t)
	h := newHarness(t, func(o *Options) { o.PortLow, o.PortHigh = port, port })
	h.run()
	s := h.create(serving(), func(c *CreateSpec) { c.Port = 0 })
	h.start(s.ID)
	h.awaitStatus(s.ID, StatusRunning)
	_, err := h.m.Create(h.ctx(), CreateSpec{ModelID: "org/tiny", EngineType: "vllm", Port: port})
	if errs.KindOf(err) != errs.Conflict {
		t.Fatalf("create on a port a started service holds: %v, want conflict", err)
	}
	other := loopbackPort(t)
	x := h.create(serving(), func(c *CreateSpec) { c.Port = other })
	if x.Port != other || x.Endpoint != h.m.endpoint(other) {
		t.Fatalf("explicit port: %d %q", x.Port, x.Endpoint)
	}
	if _, err := h.m.Create(h.ctx(), CreateSpec{ModelID: "org/tiny", EngineType: "vllm", Port: other}); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("create on a port another created service asked for: %v, want conflict", err)
	}
}
