package services

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aima/gpu"
	"aima/runtime"
)

// nestedArrayGGUF is the 65-byte GGUF of the report: one metadata key
// holding an array of arrays, on which the GGUF parser panicked inside the
// start's schedule phase, in a goroutine without a recover.
func nestedArrayGGUF() []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("GGUF")
	w(uint32(3))
	w(uint64(0))
	w(uint64(1))
	w(uint64(1))
	b.WriteString("x")
	w(uint32(9))
	w(uint32(9))
	w(uint64(1))
	w(uint32(4))
	w(uint64(1))
	b.Write(make([]byte, 4))
	return b.Bytes()
}

// A start on a GPU with a model whose GGUF header the parser cannot read
// goes on with a note (weights counted as the file's size): the daemon
// lives and the service runs.
func TestStartWithNestedArrayGGUF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nest1.gguf")
	if err := os.WriteFile(path, nestedArrayGGUF(), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, withGPUs(oneGPU()))
	mod, err := h.m.Models().Add(h.ctx(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	s := h.create(serving(), func(c *CreateSpec) { c.ModelID, c.GPUs = mod.ID, "1" })
	h.start(s.ID)
	if got := h.awaitStatus(s.ID, StatusRunning); got.GPULease == nil {
		t.Errorf("running without a lease: %+v", got)
	}
	fit, err := h.m.Fit(h.ctx(), FitRequest{ModelID: mod.ID, GPUs: "1"})
	if err != nil || !strings.Contains(strings.Join(fit.Estimate.Notes, "; "), "GGUF header unreadable") {
		t.Errorf("fit %+v, %v", fit, err)
	}
}

// panickingSource is a GPU inventory that panics, standing for any bug met
// in the phases of a start.
type panickingSource struct{}

func (panickingSource) Read(context.Context) (gpu.Snapshot, error) { panic("inventory exploded") }

// A panic in a start's phases fails that service (kind internal, the
// phase and the panic in the reason) and leaves the daemon serving.
func TestPanicInStartPhaseFailsTheService(t *testing.T) {
	h := newHarness(t, withGPUs(panickingSource{}))
	s := h.create(serving(), onGPUs("1"))
	h.start(s.ID)
	got := h.awaitStatus(s.ID, StatusFailed)
	wantFailed(t, got, FailureInternal, PhaseSchedule, "internal error while starting (phase schedule): inventory exploded")
	if !strings.Contains(h.logText(), "panic recovered") {
		t.Error("the panic was not logged")
	}
	// The manager still serves: another service starts.
	other := h.create(serving(), nil)
	h.start(other.ID)
	h.awaitStatus(other.ID, StatusRunning)
}

// A panic while recording a start's outcome, or while handling a
// container event, is contained the same way: the service fails with
// kind internal and the watcher goes on.
func TestPanicAfterStartAndInWatcherContained(t *testing.T) {
	h := newHarness(t, nil)
	h.m.hooks.beforeRunning = func(s Service) {
		if s.Name == "boom" {
			panic("recording exploded")
		}
	}
	var once bool
	h.m.hooks.eventHandled = func(runtime.Event) {
		if !once {
			once = true
			panic("watcher exploded")
		}
	}
	h.run()
	s := h.create(serving(), func(c *CreateSpec) { c.Name = "boom" })
	h.start(s.ID)
	got := h.awaitStatus(s.ID, StatusFailed)
	if got.Failure != FailureInternal || !strings.Contains(got.Reason, "recording exploded") {
		t.Errorf("failure %q reason %q", got.Failure, got.Reason)
	}

	ok := h.create(serving(), nil)
	h.start(ok.ID)
	running := h.awaitStatus(ok.ID, StatusRunning)
	// The watcher panicked on the first event it handled and was
	// started again: it still sees a container die.
	if err := h.fr.StopContainer(h.ctx(), running.ContainerID, runtime.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	h.awaitStatus(ok.ID, StatusFailed)
	if !strings.Contains(h.logText(), "panic recovered: the container event watcher") {
		t.Error("the watcher's panic was not logged")
	}
}

func (h *harness) logText() string {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return h.logs.String()
}
