package config

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Runtimes aima runs engines with (Config.Runtime).
const (
	RuntimeDocker     = "docker"
	RuntimeKubernetes = "kubernetes"
)

// Kubernetes is the config file's kubernetes section, read when runtime is
// kubernetes: where the cluster is, and how engine Pods are placed and get
// their model files.
type Kubernetes struct {
	// Kubeconfig is the kubeconfig file (empty: KUBECONFIG or
	// ~/.kube/config).
	Kubeconfig string `yaml:"kubeconfig"`
	// Context is one of the kubeconfig's contexts (empty: its current one).
	Context string `yaml:"context"`
	// InCluster uses the service account of the Pod aima runs in.
	InCluster bool `yaml:"in_cluster"`
	// Namespace is where engine Pods run.
	Namespace string `yaml:"namespace"`
	// NodeSelector goes on every engine Pod, and limits GPU placement to
	// the nodes it matches.
	NodeSelector map[string]string `yaml:"node_selector"`
	// Tolerations go on every engine Pod (besides nvidia.com/gpu's); GPU
	// placement skips a node with a taint they do not tolerate.
	Tolerations []Toleration `yaml:"tolerations"`
	// ServiceAccount runs engine Pods (empty: none, so no API credentials
	// in them).
	ServiceAccount string `yaml:"service_account"`
	// Models is how model files reach a Pod.
	Models ModelVolume `yaml:"models"`
	// Endpoint is how the daemon reaches engines: auto (pod_ip in the
	// cluster, else proxy), pod_ip, or proxy (the API server's Pod proxy).
	Endpoint string `yaml:"endpoint"`
}

// Toleration is a Pod toleration.
type Toleration struct {
	// Key is the taint's key.
	Key string `yaml:"key"`
	// Operator is Equal (default) or Exists.
	Operator string `yaml:"operator"`
	// Value is the taint's value (with Equal).
	Value string `yaml:"value"`
	// Effect is NoSchedule, PreferNoSchedule, NoExecute, or empty for all.
	Effect string `yaml:"effect"`
}

// ModelVolume says how model files reach engine Pods.
type ModelVolume struct {
	// Kind is host_path (the model's path on the node, read-only; every
	// node needs the files there) or pvc (a PersistentVolumeClaim holding
	// one directory per model ID).
	Kind string `yaml:"kind"`
	// Claim is the PersistentVolumeClaim's name (kind pvc).
	Claim string `yaml:"claim"`
	// MountPath is where the claim is mounted read-only in the Pod.
	MountPath string `yaml:"mount_path"`
}

func defaultKubernetes() Kubernetes {
	return Kubernetes{Namespace: "default", Endpoint: "auto", Models: ModelVolume{Kind: "host_path", MountPath: "/models"}}
}

func (c *Config) validateRuntime() error {
	switch c.Runtime {
	case RuntimeDocker:
		return nil
	case RuntimeKubernetes:
	default:
		return fmt.Errorf("runtime %q: want docker or kubernetes", c.Runtime)
	}
	k := c.Kubernetes
	if msgs := validation.IsDNS1123Label(k.Namespace); len(msgs) > 0 {
		return fmt.Errorf("kubernetes.namespace %q: %s", k.Namespace, msgs[0])
	}
	if k.InCluster && (k.Kubeconfig != "" || k.Context != "") {
		return fmt.Errorf("kubernetes: in_cluster uses the Pod's service account; leave kubeconfig and context empty")
	}
	switch k.Endpoint {
	case "auto", "pod_ip", "proxy":
	default:
		return fmt.Errorf("kubernetes.endpoint %q: want auto, pod_ip or proxy", k.Endpoint)
	}
	switch k.Models.Kind {
	case "host_path":
	case "pvc":
		if k.Models.Claim == "" {
			return fmt.Errorf("kubernetes.models: kind pvc needs claim (the PersistentVolumeClaim's name)")
		}
	default:
		return fmt.Errorf("kubernetes.models.kind %q: want host_path or pvc", k.Models.Kind)
	}
	for _, t := range k.Tolerations {
		if t.Operator != "" && t.Operator != "Equal" && t.Operator != "Exists" {
			return fmt.Errorf("kubernetes.tolerations: operator %q: want Equal or Exists", t.Operator)
		}
		switch t.Effect {
		case "", "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			return fmt.Errorf("kubernetes.tolerations: effect %q: want NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
		}
	}
	return nil
}
