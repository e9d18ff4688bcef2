package mcp

import (
	"testing"

	"aima/tools"
)

func TestParseURI(t *testing.T) {
	for uri, want := range map[string]resourceRef{
		"aima://services/svc-1":      {"service", "svc-1"},
		"aima://services/svc-1/logs": {"logs", "svc-1"},
		"aima://models/m-1":          {"model", "m-1"},
	} {
		if got, err := parseURI(uri); err != nil || got != want {
			t.Errorf("parseURI(%q) = %+v, %v", uri, got, err)
		}
	}
	for _, bad := range []string{"", "aima://services/", "aima://services/a/b", "aima://models/a/logs", "file:///etc/passwd", "aima://gpus/0"} {
		if _, err := parseURI(bad); err == nil {
			t.Errorf("parseURI(%q) accepted", bad)
		}
	}
}

// A read-only server offers the diagnosis prompt but not deploy-model,
// which leads to operations it does not serve.
func TestReadOnlyPrompts(t *testing.T) {
	for _, ro := range []bool{false, true} {
		s := NewServer(tools.LocalCaller{Domain: &tools.Domain{ReadOnly: ro}}, Options{ReadOnly: ro})
		_, deploy := s.ListPrompts()[DeployPrompt]
		_, diagnose := s.ListPrompts()[DiagnosePrompt]
		if !diagnose || deploy == ro {
			t.Errorf("read-only %v: diagnose %v, deploy %v", ro, diagnose, deploy)
		}
	}
}
