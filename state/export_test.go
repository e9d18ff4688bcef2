package state

import "testing"

// ConformanceBackends exposes the test backends to the external
// conformance test (conformance_ext_test.go), which runs statetest's suite
// on each.
func ConformanceBackends() map[string]func(t *testing.T) Store {
	m := map[string]func(t *testing.T) Store{}
	for _, b := range backends() {
		m[b.name] = b.open
	}
	return m
}
