package docker

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"aima/errs"
	"aima/internal/testenv"
	"aima/runtime"
)

// TestWaitExitLatency checks that WaitExit is pushed by the engine, not
// polled. On Docker 20.10 the engine itself answers a wait only after
// tearing down the container's network (~50-80 ms after the process exit on
// a quiet machine, seconds under heavy load), so the test compares WaitExit
// with a bare wait request sent at the same time: a polling implementation
// would trail it by its poll period. The absolute latency is logged; the
// figure that matters is measured by the e2e ExitToFailed benchmark.
func TestWaitExitLatency(t *testing.T) {
	f := newFixture(t)
	id := f.run(t, f.spec(testenv.TestProgImage(t), "sleep:500ms", "exit:3"))
	rawAt := make(chan time.Time, 1)
	go func() {
		w := f.raw.ContainerWait(t.Context(), id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case <-w.Result:
		case <-w.Error:
		}
		rawAt <- time.Now()
	}()
	ch := f.d.WaitExit(t.Context(), id)
	var st runtime.ExitStatus
	select {
	case st = <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit status")
	}
	at := time.Now()
	if st.Err != nil || st.ExitCode != 3 {
		t.Fatalf("exit %d, %v; want 3", st.ExitCode, st.Err)
	}
	if _, open := <-ch; open {
		t.Error("channel not closed after the one status")
	}
	ins, err := f.d.InspectContainer(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Running || ins.ExitCode != 3 {
		t.Errorf("inspect after WaitExit: %+v (state must be final)", ins)
	}
	raw := <-rawAt
	latency, overhead := at.Sub(ins.FinishedAt), at.Sub(raw)
	t.Logf("WaitExit latency: %v after the engine's FinishedAt; delivered %v after a bare wait request's answer (negative = before)", latency, overhead)
	if overhead > 250*time.Millisecond {
		t.Errorf("WaitExit arrives %v after a bare wait request's answer: is it polling?", overhead)
	}

	// An already exited container is reported at once.
	start := time.Now()
	if code := f.waitExit(t, id); code != 3 {
		t.Errorf("second wait: exit %d", code)
	}
	t.Logf("WaitExit on an exited container: %v", time.Since(start))
}

func TestWaitExitContextCanceled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.run(t, f.spec(testenv.TestProgImage(t), "wait"))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	st, ok := <-f.d.WaitExit(ctx, id)
	if !ok || !isCtxErr(st.Err) || errs.KindOf(st.Err) != errs.DeadlineExceeded {
		t.Fatalf("got %+v (delivered=%v), want a deadline error", st, ok)
	}
}

func TestWaitExitEngineGone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.run(t, f.spec(testenv.TestProgImage(t), "wait"))
	p := startProxy(t, "/wait")
	d, err := New(WithHost(p.host))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	ch := d.WaitExit(t.Context(), id)
	// Cut the line once the wait request reached the engine.
	select {
	case <-p.saw:
	case <-time.After(10 * time.Second):
		t.Fatal("wait request never sent")
	}
	p.cut()
	select {
	case st := <-ch:
		wantKind(t, st.Err, errs.Unavailable, "docker engine unavailable")
		t.Logf("engine gone during wait: %v", st.Err)
	case <-time.After(10 * time.Second):
		t.Fatal("WaitExit did not notice the engine going away")
	}
}
