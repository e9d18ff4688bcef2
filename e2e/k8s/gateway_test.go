package k8s

import (
	"strings"
	"testing"
)

// TestKubeGateway: with engines reached through the API server's Pod
// proxy (endpoint: proxy, as from outside a cluster), the gateway's first
// request for an on-demand service's model starts it on the real node and
// is answered by the engine in the Pod, streamed too.
func TestKubeGateway(t *testing.T) {
	e := setup(t, "proxy")
	id := e.create(t, nil, "--on-demand")
	code, body, err := e.d.Post("/v1/chat/completions", map[string]any{"model": e.modelID,
		"messages": []map[string]string{{"role": "user", "content": "Hello from a pod"}}})
	if err != nil || code != 200 || !strings.Contains(string(body), "Hello from a pod") {
		t.Fatalf("chat through /v1 (on-demand start): %d %s %v", code, body, err)
	}
	s := e.status(t, id)
	if s.Status != "running" {
		t.Fatalf("after the on-demand start: %+v", s)
	}
	if p := e.pod(t, s.ContainerID); p.Spec.NodeName != e.node.Name {
		t.Errorf("pod on %q, want the real node", p.Spec.NodeName)
	}
	code, body, err = e.d.Post("/v1/chat/completions", map[string]any{"model": e.modelID, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": "stream it"}}})
	if err != nil || code != 200 || !strings.Contains(string(body), `" it"`) || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Errorf("streamed chat through /v1: %d %s %v", code, body, err)
	}
}
