package config

import (
	"path/filepath"
	"testing"

	"aima/engines"
)

// examples/sim.yaml (make demo) points every engine at the simulator, so
// the demo has vLLM, SGLang and llama.cpp without a GPU.
func TestSimExamplePointsEveryEngineAtTheSimulator(t *testing.T) {
	c, err := Load(filepath.Join("..", "examples", "sim.yaml"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engines.NewCatalog(c.Engines); err != nil {
		t.Fatal(err)
	}
	for typ := range engines.Builtin() {
		o, ok := c.Engines[typ]
		if !ok || o.Image != "aima-enginesim:dev" || o.GPUs != "none" {
			t.Errorf("examples/sim.yaml: engine %s is %+v, want the simulator without GPUs", typ, o)
		}
	}
}

// examples/sim-k8s.yaml (make demo-k8s) runs the simulator on Kubernetes,
// in the namespace localkube creates, reached at Pod IPs.
func TestSimK8sExampleRunsOnKubernetes(t *testing.T) {
	c, err := Load(filepath.Join("..", "examples", "sim-k8s.yaml"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engines.NewCatalog(c.Engines); err != nil {
		t.Fatal(err)
	}
	if c.Runtime != RuntimeKubernetes || c.Kubernetes.Namespace != "aima" || c.Kubernetes.Endpoint != "pod_ip" || c.Kubernetes.Kubeconfig != "" {
		t.Errorf("examples/sim-k8s.yaml: runtime %q, kubernetes %+v", c.Runtime, c.Kubernetes)
	}
	for typ := range engines.Builtin() {
		if o := c.Engines[typ]; o.Image != "aima-enginesim:dev" || o.GPUs != "none" {
			t.Errorf("examples/sim-k8s.yaml: engine %s is %+v, want the simulator without GPUs", typ, o)
		}
	}
}
