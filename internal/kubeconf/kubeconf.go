// Package kubeconf builds the client configuration of a Kubernetes API
// server from aima's kubernetes settings, the same for the runtime
// (engine Pods), the state store kept in the API server, leader election
// and the CLI's store commands.
package kubeconf

import (
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"aima/errs"
)

// REST returns the in-cluster config (the service account of the Pod aima
// runs in) when inCluster, else the kubeconfig file (empty: KUBECONFIG or
// ~/.kube/config) with the given context (empty: its current context).
func REST(kubeconfig, context string, inCluster bool) (*rest.Config, error) {
	if inCluster {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, err, "kubernetes in-cluster config")
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	over := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, over).ClientConfig()
	if err != nil {
		return nil, errs.Wrap(errs.InvalidArgument, err, "kubeconfig")
	}
	return cfg, nil
}
