package state_test

import (
	"testing"

	"aima/state"
	"aima/state/statetest"
)

// TestConformance runs the Store conformance suite on every embedded
// backend (state/kubestore runs it on the API server).
func TestConformance(t *testing.T) {
	for name, open := range state.ConformanceBackends() {
		t.Run(name, func(t *testing.T) { statetest.Run(t, open) })
	}
}
