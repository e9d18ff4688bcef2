package daemon

import (
	"context"
	"log/slog"
	"time"

	"aima/config"
	"aima/errs"
	"aima/runtime"
	"aima/runtime/docker"
	"aima/runtime/kubernetes"
	"aima/state"
)

// newRuntime builds the runtime the config names: the Docker engine (from
// the environment or Options.DockerHost) or a Kubernetes cluster. Neither
// is contacted here; the reconcile at start-up is the first call.
func newRuntime(cfg config.Config, opts Options, store state.Store, log *slog.Logger) (runtime.Runtime, func() error, error) {
	if cfg.Runtime != config.RuntimeKubernetes {
		var dopts []docker.Option
		if opts.DockerHost != "" {
			dopts = append(dopts, docker.WithHost(opts.DockerHost))
		}
		d, err := docker.New(dopts...)
		if err != nil {
			return nil, nil, errs.Wrap(errs.Unavailable, err, "docker client")
		}
		return d, d.Close, nil
	}
	// The store's identity goes on every Pod (as on every container) and
	// says which Pods' ports this daemon publishes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	storeID, err := state.StoreID(ctx, store)
	if err != nil {
		return nil, nil, err
	}
	kc := cfg.Kubernetes
	var tols []kubernetes.Toleration
	for _, t := range kc.Tolerations {
		tols = append(tols, kubernetes.Toleration{Key: t.Key, Operator: t.Operator, Value: t.Value, Effect: t.Effect})
	}
	volume := kubernetes.ModelHostPath
	if kc.Models.Kind == "pvc" {
		volume = kubernetes.ModelPVC
	}
	k, err := kubernetes.New(kubernetes.Options{
		Kubeconfig: kc.Kubeconfig, Context: kc.Context, InCluster: kc.InCluster, Namespace: kc.Namespace,
		NodeSelector: kc.NodeSelector, Tolerations: tols, ServiceAccount: kc.ServiceAccount,
		ModelVolume: volume, ModelClaim: kc.Models.Claim, ModelMountPath: kc.Models.MountPath,
		Endpoint: kc.Endpoint, StoreID: storeID, UserAgent: "aima/" + Version, Log: log,
	})
	if err != nil {
		return nil, nil, err
	}
	return k, k.Close, nil
}
