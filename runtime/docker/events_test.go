package docker

import (
	"context"
	"testing"
	"time"

	"aima/errs"
	"aima/internal/testenv"
	"aima/runtime"
)

// nextEvent returns the next event of container id with one of actions.
func nextEvent(t *testing.T, evs <-chan runtime.Event, id string, actions ...string) runtime.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e, ok := <-evs:
			if !ok {
				t.Fatalf("event stream closed waiting for %v", actions)
			}
			if e.ContainerID != id {
				continue
			}
			for _, a := range actions {
				if e.Action == a {
					return e
				}
			}
		case <-timeout:
			t.Fatalf("no %v event for %s", actions, id)
		}
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	img := testenv.TestProgImage(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	subscribed := time.Now()
	evs, errc := f.d.Events(ctx, runtime.EventOptions{Labels: f.labels})

	// Killed: start, then die with 137 when force-removed.
	id := f.run(t, f.spec(img, "wait"))
	start := nextEvent(t, evs, id, "start")
	if start.Labels[testLabel] != f.name || start.Time.Before(subscribed.Add(-time.Second)) {
		t.Errorf("start event %+v", start)
	}
	if err := f.d.RemoveContainer(t.Context(), id, runtime.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	die := nextEvent(t, evs, id, "die")
	if die.ExitCode != 137 || die.Labels[testLabel] != f.name || die.Time.Before(start.Time) {
		t.Errorf("die event %+v, want exit code 137", die)
	}
	nextEvent(t, evs, id, "destroy")

	// Exited on its own with a code.
	id = f.run(t, f.spec(img, "exit:5"))
	if die := nextEvent(t, evs, id, "die"); die.ExitCode != 5 {
		t.Errorf("die event %+v, want exit code 5", die)
	}

	// Containers without the label are filtered out.
	other := f.spec(img, "exit:0")
	other.Labels = map[string]string{testLabel: f.name + "-other"}
	testenv.RemoveContainersWithLabel(t, testLabel, f.name+"-other")
	otherID := f.run(t, other)
	f.waitExit(t, otherID)
	marker := f.run(t, f.spec(img, "exit:0"))
	timeout := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case e := <-evs:
			if e.ContainerID == otherID {
				t.Errorf("event of an unlabeled container: %+v", e)
			}
			done = e.ContainerID == marker && e.Action == "die"
		case <-timeout:
			t.Fatal("no die event for the marker container")
		}
	}

	cancel()
	for range evs {
	}
	if err := <-errc; errs.KindOf(err) != errs.Canceled {
		t.Errorf("stream end: %v, want canceled", err)
	}
}

func TestEventsSinceReplays(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	since := time.Now().Add(-time.Second)
	id := f.run(t, f.spec(testenv.TestProgImage(t), "exit:9"))
	f.waitExit(t, id)
	evs, _ := f.d.Events(t.Context(), runtime.EventOptions{Since: since, Labels: f.labels})
	if die := nextEvent(t, evs, id, "die"); die.ExitCode != 9 {
		t.Errorf("replayed die %+v", die)
	}
}

func TestEventsEngineGone(t *testing.T) {
	t.Parallel()
	newFixture(t)
	p := startProxy(t, "")
	d, err := New(WithHost(p.host))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	evs, errc := d.Events(t.Context(), runtime.EventOptions{Labels: map[string]string{testLabel: "nobody"}})
	p.cut()
	select {
	case err := <-errc:
		wantKind(t, err, errs.Unavailable, "docker engine unavailable")
		t.Logf("engine gone: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("event stream did not end when the engine went away")
	}
	if _, open := <-evs; open {
		t.Error("event channel not closed")
	}
}
