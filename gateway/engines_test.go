package gateway_test

import (
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/services"
)

// TestIdleReleasePerEngine: SGLang sleeps when idle (its memory release)
// and a request wakes it in the same run; llama.cpp has no sleep mode, so
// an idle release stops it and the next request starts it again.
func TestIdleReleasePerEngine(t *testing.T) {
	g := newGW(t, "")
	idle := time.Second
	for _, tc := range []struct {
		engine, model string
		path          string
		sleeps        bool
	}{
		{"sglang", "qwen-sglang", testenv.MakeModel(t, "qwen-sglang"), true},
		{"llamacpp", "tiny-llama", testenv.MakeGGUF(t, "tiny-llama", testenv.GGUFOptions{}), false},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			if _, err := g.Domain.Models.Add(t.Context(), tc.path, ""); err != nil {
				t.Fatal(err)
			}
			s, err := g.Domain.Services.Create(t.Context(), services.CreateSpec{EngineType: tc.engine, ModelID: tc.model, OnDemand: true, IdleTimeout: idle})
			if err != nil {
				t.Fatal(err)
			}
			testenv.RemoveContainersWithLabel(t, "aima.service", s.ID)
			if s.SleepMode != tc.sleeps {
				t.Fatalf("%s: sleep mode %v, want %v", tc.engine, s.SleepMode, tc.sleeps)
			}
			g.mustChat(t, tc.model, "first request starts it")
			first := g.get(t, s.ID)
			released := services.StatusStopped
			if tc.sleeps {
				released = services.StatusSleeping
			}
			g.waitStatus(t, s.ID, released, idle+10*time.Second)
			if r := g.get(t, s.ID).Reason; !strings.Contains(r, "idle") {
				t.Errorf("released with reason %q", r)
			}
			g.mustChat(t, tc.model, "the next request brings it back")
			again := g.get(t, s.ID)
			if again.Status != services.StatusRunning {
				t.Fatalf("after the request: %s (%s)", again.Status, again.Reason)
			}
			if tc.sleeps && (again.Run != first.Run || !strings.Contains(again.Reason, "woke up")) {
				t.Errorf("SGLang should wake in the same run: run %d → %d, reason %q", first.Run, again.Run, again.Reason)
			}
			if !tc.sleeps && again.Run != first.Run+1 {
				t.Errorf("llama.cpp should start a new run: run %d → %d", first.Run, again.Run)
			}
		})
	}
}
