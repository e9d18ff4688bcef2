package daemon

import (
	"context"

	"aima/config"
	"aima/state"
	"aima/state/kubestore"
)

// OpenStore opens the state store the config names (the daemon is the one
// place that picks a store implementation): the Kubernetes API
// server's (store: kubernetes, in the kubernetes section's cluster and
// namespace) or one kept under dataDir (state.Open).
func OpenStore(ctx context.Context, c config.Config, dataDir, userAgent string) (state.Store, error) {
	if c.Store != config.StoreKubernetes {
		return state.Open(c.Store, dataDir)
	}
	k := c.Kubernetes
	return kubestore.Open(ctx, kubestore.Options{
		Kubeconfig: k.Kubeconfig, Context: k.Context, InCluster: k.InCluster,
		Namespace: k.Namespace, Name: c.Cluster.StoreName, UserAgent: userAgent,
	})
}
