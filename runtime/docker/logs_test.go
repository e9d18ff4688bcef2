package docker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"aima/errs"
	"aima/internal/testenv"
	"aima/runtime"
	"aima/runtime/runtimetest"
)

// readLogs drains a Logs call (bounded) into "stream:text" strings.
func readLogs(ctx context.Context, t *testing.T, d *Docker, id string, opts runtime.LogOptions) ([]runtime.LogLine, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return runtimetest.Collect(ctx, d, id, opts)
}

func texts(lines []runtime.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Stream + ":" + l.Text
	}
	return out
}

func TestLogs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Pauses keep the engine's stdout and stderr copiers from racing.
	id := f.run(t, f.spec(testenv.TestProgImage(t), "out:o1", "sleep:30ms", "err:e1", "sleep:30ms", "out:o2",
		"sleep:30ms", `outraw:crlf\r\n`, "sleep:30ms", "err:e2", "sleep:30ms", "outraw:partial"))
	if code := f.waitExit(t, id); code != 0 {
		t.Fatalf("exit %d", code)
	}
	all, err := readLogs(t.Context(), t, f.d, id, runtime.LogOptions{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"stdout:o1", "stderr:e1", "stdout:o2", "stdout:crlf", "stderr:e2", "stdout:partial"}
	if !slices.Equal(texts(all), want) {
		t.Fatalf("all = %q, want %q", texts(all), want)
	}
	for i, l := range all {
		if l.Time.IsZero() || (i > 0 && l.Time.Before(all[i-1].Time)) {
			t.Errorf("line %d time %v (previous %v)", i, l.Time, all[max(i-1, 0)].Time)
		}
	}

	tail, err := readLogs(t.Context(), t, f.d, id, runtime.LogOptions{Tail: 2})
	if err != nil || !slices.Equal(texts(tail), want[4:]) {
		t.Errorf("tail 2 = %q, %v; want %q", texts(tail), err, want[4:])
	}
	none, err := readLogs(t.Context(), t, f.d, id, runtime.LogOptions{Tail: 0})
	if err != nil || len(none) != 0 {
		t.Errorf("tail 0 = %q, %v; want nothing", texts(none), err)
	}
	since, err := readLogs(t.Context(), t, f.d, id, runtime.LogOptions{Tail: -1, Since: all[2].Time})
	if err != nil || !slices.Equal(texts(since), want[2:]) {
		t.Errorf("since line 3 = %q, %v; want %q", texts(since), err, want[2:])
	}
}

func TestLogsFollow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.run(t, f.spec(testenv.TestProgImage(t), "out:a", "sleep:300ms", "err:b", "sleep:300ms", "out:c", "exit:4"))
	start := time.Now()
	got, err := readLogs(t.Context(), t, f.d, id, runtime.LogOptions{Follow: true, Tail: -1})
	if err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	if want := []string{"stdout:a", "stderr:b", "stdout:c"}; !slices.Equal(texts(got), want) {
		t.Errorf("follow = %q, want %q", texts(got), want)
	}
	t.Logf("follow ended with the container after %v", time.Since(start))

	// Follow on a running container ends with ctx.
	id = f.run(t, f.spec(testenv.TestProgImage(t), "out:first", "wait"))
	ctx, cancel := context.WithCancel(t.Context())
	lines, errc := runtimetest.LogChan(ctx, f.d, id, runtime.LogOptions{Follow: true, Tail: -1})
	if l := <-lines; l.Text != "first" {
		t.Errorf("first line %+v", l)
	}
	cancel()
	for range lines {
	}
	if err := <-errc; errs.KindOf(err) != errs.Canceled {
		t.Errorf("after cancel: %v, want canceled", err)
	}
}

func TestLogsTTY(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	img := testenv.TestProgImage(t)
	// The runtime never creates TTY containers, but Logs must read them.
	res, err := f.raw.ContainerCreate(t.Context(), client.ContainerCreateOptions{
		Name: f.name + "-tty", Image: img,
		Config: &container.Config{Tty: true, Cmd: []string{"out:one", "err:two", "outraw:three"}, Labels: f.labels},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.d.StartContainer(t.Context(), res.ID); err != nil {
		t.Fatal(err)
	}
	f.waitExit(t, res.ID)
	got, err := readLogs(t.Context(), t, f.d, res.ID, runtime.LogOptions{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"stdout:one", "stdout:two", "stdout:three"}; !slices.Equal(texts(got), want) {
		t.Errorf("tty logs = %q, want %q", texts(got), want)
	}
	for _, l := range got {
		if l.Time.IsZero() {
			t.Errorf("no time on %+v", l)
		}
	}
}

func TestLogsManyLines(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	args := []string{}
	for i := range 500 {
		args = append(args, fmt.Sprintf("out:line %03d", i))
	}
	id := f.run(t, f.spec(testenv.TestProgImage(t), args...))
	f.waitExit(t, id)
	got, err := readLogs(t.Context(), t, f.d, id, runtime.LogOptions{Tail: -1})
	if err != nil || len(got) != 500 || got[499].Text != "line 499" {
		t.Fatalf("%d lines, err %v", len(got), err)
	}
}

func TestLogsEngineGone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.run(t, f.spec(testenv.TestProgImage(t), "out:before", "wait"))
	p := startProxy(t, "")
	d, err := New(WithHost(p.host))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	lines, errc := runtimetest.LogChan(t.Context(), d, id, runtime.LogOptions{Follow: true, Tail: -1})
	if l := <-lines; l.Text != "before" {
		t.Fatalf("first line %+v", l)
	}
	p.cut()
	for range lines {
	}
	err = <-errc
	wantKind(t, err, errs.Unavailable, "docker engine unavailable")
	t.Logf("engine gone during follow: %v", err)
}
