package e2e

import (
	"slices"
	"strings"
	"testing"

	"aima/errs"
	"aima/events"
	"aima/internal/testenv"
	"aima/services"
	"aima/tools"
)

// pullPadding makes the pulled layer big enough for byte progress to show.
const pullPadding = 20 << 20

// TestPullPhase runs the pull phase for real: the engine image is only in a
// loopback registry, so the start downloads it with byte progress.
func TestPullPhase(t *testing.T) {
	testenv.RequireDocker(t)
	reg := testenv.StartRegistry(t)
	local := "aima-enginesim-padded:" + testenv.UniqueName(t)
	testenv.EngineSimImageWithPadding(t, local, pullPadding)
	ref := reg + "/aima/enginesim:pulltest"
	testenv.PushToRegistry(t, local, ref)
	// Neither name may stay local, or the padding layer would not be pulled.
	testenv.RemoveImage(t, ref)
	testenv.RemoveImage(t, local)

	t.Run("pulls with byte progress", func(t *testing.T) {
		p := newInprocWithImage(t, ref)
		s := p.createService(t, tools.ServiceCreateInput{Name: "pulled"})
		out, evs, err := p.startWait(t, s.ID, 120)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		if out.Service.Status != services.StatusRunning || out.Service.Image != ref {
			t.Fatalf("after the start: status %s image %s; want running %s", out.Service.Status, out.Service.Image, ref)
		}
		if got := phasesOf(evs); !slices.Equal(got, startPhases) {
			t.Errorf("phases %v, want %v", got, startPhases)
		}
		var progress []events.Event
		complete := map[string]bool{} // layers whose bytes reached their total
		for _, ev := range evs {
			if ev.Type != events.TypeProgress {
				continue
			}
			if ev.Phase != string(services.PhasePull) {
				t.Errorf("progress event outside the pull phase: %+v", ev)
			}
			if ev.Current > 0 && ev.Total > 0 {
				progress = append(progress, ev)
				if ev.Current > ev.Total {
					t.Errorf("layer %s: current %d > total %d", ev.Layer, ev.Current, ev.Total)
				}
				if ev.Current == ev.Total {
					complete[ev.Layer] = true
				}
			}
		}
		if len(progress) == 0 {
			t.Fatalf("no byte progress (current and total > 0) among %d events:\n%s", len(evs), eventLines(evs))
		}
		if len(complete) == 0 {
			t.Errorf("no layer's progress reached current == total:\n%s", eventLines(evs))
		}
		var big bool
		for _, ev := range progress {
			big = big || ev.Total >= pullPadding/2
		}
		if !big {
			t.Errorf("no progress for the %d-byte padding layer:\n%s", pullPadding, eventLines(evs))
		}
		pulled := false
		for _, ev := range evs {
			pulled = pulled || (ev.Type == events.TypeMessage && ev.Message == "pulled image "+ref)
		}
		if !pulled {
			t.Errorf("no \"pulled image\" message:\n%s", eventLines(evs))
		}
	})

	t.Run("missing image fails the start", func(t *testing.T) {
		missing := reg + "/aima/enginesim:does-not-exist"
		p := newInprocWithImage(t, missing)
		s := p.createService(t, tools.ServiceCreateInput{Name: "nopull"})
		_, _, err := p.startWait(t, s.ID, 120)
		if err == nil {
			t.Fatal("start with a missing image returned no error")
		}
		if k := errs.KindOf(err); k == errs.DeadlineExceeded {
			t.Errorf("error kind %s: %v", k, err)
		}
		st := p.status(t, s.ID)
		if st.Status != services.StatusFailed || st.Phase != services.PhasePull {
			t.Fatalf("status %s phase %s, want failed in pull (reason %q)", st.Status, st.Phase, st.Reason)
		}
		if !strings.Contains(st.Reason, "pull") || !strings.Contains(st.Reason, missing) {
			t.Errorf("reason %q should mention the pull of %s", st.Reason, missing)
		}
		if st.ContainerID != "" {
			t.Errorf("a container was recorded (%s) though the image never arrived", st.ContainerID)
		}
		if cs := containerStates(t, s.ID); len(cs) != 0 {
			t.Errorf("containers were created: %v", cs)
		}
	})
}

// eventLines renders events for failure messages.
func eventLines(evs []events.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(string(ev.Type) + " " + ev.Phase + " " + ev.Status + " " + ev.Message + "\n")
	}
	return b.String()
}
