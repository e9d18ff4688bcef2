package mcp

import (
	"testing"
	"time"

	"aima/events"
)

func TestEventText(t *testing.T) {
	cases := []struct {
		ev   events.Event
		want string
	}{
		{events.Event{Type: events.TypePhase, Phase: "pull", Message: "checking image x"}, "pull: checking image x"},
		{events.Event{Type: events.TypeMessage, Phase: "loading", Message: "weights loaded in 5.4 s"}, "loading: weights loaded in 5.4 s"},
		{events.Event{Type: events.TypeProgress, Phase: "pull", Layer: "sha256:ab", Message: "sha256:ab: Downloading 3.2 MiB/20.0 MiB"}, "pull: sha256:ab: Downloading 3.2 MiB/20.0 MiB"},
		{events.Event{Type: events.TypeStatus, Status: "running", Message: "creating → running"}, "running"},
		{events.Event{Type: events.TypeStatus, Status: "failed", Message: "creating → failed: exit code 1: CUDA OOM"}, "failed: exit code 1: CUDA OOM"},
		{events.Event{Type: events.TypeMessage, Message: "no phase"}, "no phase"},
	}
	for _, tc := range cases {
		if got := eventText(tc.ev); got != tc.want {
			t.Errorf("eventText(%+v) = %q, want %q", tc.ev, got, tc.want)
		}
	}
}

// TestPullThrottle checks which byte updates of a layer go out, on a
// synthetic clock.
func TestPullThrottle(t *testing.T) {
	n := newNotifier(t.Context(), nil, nil)
	t0 := time.Unix(0, 0)
	dl := func(layer string, cur int64) events.Event {
		return events.Event{Type: events.TypeProgress, Layer: layer, Current: cur, Total: 100, Message: layer + ": Downloading 1 MiB/2 MiB"}
	}
	steps := []struct {
		ev   events.Event
		at   time.Duration
		want bool
	}{
		{dl("a", 1), 0, true},                      // first update of a layer
		{dl("a", 2), 50 * time.Millisecond, false}, // too soon
		{dl("b", 1), 60 * time.Millisecond, true},  // layers are throttled separately
		{dl("a", 3), pullGap, true},                // gap elapsed
		{dl("a", 4), pullGap + time.Millisecond, false},
		{dl("a", 100), pullGap + 2*time.Millisecond, true}, // completion always goes out
		{events.Event{Type: events.TypeProgress, Layer: "a", Message: "a: Pull complete"}, pullGap + 3*time.Millisecond, true}, // status change
	}
	for i, s := range steps {
		if got := n.pullDue(s.ev, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d (%s at %v): due=%v, want %v", i, s.ev.Message, s.at, got, s.want)
		}
	}
}
