package kubernetes

import (
	"context"
	"slices"

	authv1 "k8s.io/api/authorization/v1"

	"aima/runtime"
)

// needed are the permissions the runtime uses in its namespace.
var needed = []authv1.ResourceAttributes{
	{Verb: "create", Resource: "pods"},
	{Verb: "delete", Resource: "pods"},
	{Verb: "get", Resource: "pods"},
	{Verb: "list", Resource: "pods"},
	{Verb: "watch", Resource: "pods"},
	{Verb: "patch", Resource: "pods"},
	{Verb: "get", Resource: "pods", Subresource: "log"},
	{Verb: "list", Resource: "events"},
	{Verb: "watch", Resource: "events"},
}

// neededCluster are the cluster-wide permissions GPU placement reads
// with (GPUNodes): the nodes, and the Pods of every namespace bound to
// them. Without them starts are not checked against the nodes' GPUs.
var neededCluster = []authv1.ResourceAttributes{
	{Verb: "list", Resource: "nodes"},
	{Verb: "watch", Resource: "nodes"},
	{Verb: "list", Resource: "pods"},
	{Verb: "watch", Resource: "pods"},
}

// Permissions are what the runtime uses with endpoint (EndpointProxy
// adds get pods/proxy; EndpointAuto in a cluster is EndpointPodIP): in its
// namespace, and cluster-wide for GPU placement. `aima doctor` checks
// them; the Helm chart's Role and ClusterRole grant exactly them
// (deploy/chart_test.go compares).
func Permissions(endpoint string) (namespaced, clusterWide []authv1.ResourceAttributes) {
	namespaced = slices.Clone(needed)
	if endpoint == EndpointProxy {
		namespaced = append(namespaced, authv1.ResourceAttributes{Verb: "get", Resource: "pods", Subresource: "proxy"})
	}
	return namespaced, slices.Clone(neededCluster)
}

var _ runtime.Diagnoser = (*Kube)(nil)

// Diagnose reports the cluster for `aima doctor`: reachable, version,
// namespace, and the permissions aima lacks there (asked of the API server
// with SelfSubjectAccessReviews, so RBAC, webhooks and all count).
func (k *Kube) Diagnose(ctx context.Context) runtime.ClusterReport {
	r := runtime.ClusterReport{Runtime: "kubernetes", Server: k.rest.Host, Namespace: k.ns, Endpoint: k.endpoint, Missing: []string{}}
	v, err := k.ServerVersion(ctx)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Reachable, r.Version = true, v
	attrs, clusterWide := Permissions(k.endpoint)
	for i, a := range append(attrs, clusterWide...) {
		cluster := i >= len(attrs)
		if !cluster {
			a.Namespace = k.ns
		}
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}
		res, err := k.reviewAccess(ctx, review)
		if err != nil {
			r.Error = classify(err, "check permissions").Error()
			return r
		}
		if !res.Status.Allowed {
			name := a.Resource
			if a.Subresource != "" {
				name += "/" + a.Subresource
			}
			if cluster {
				name += " (all namespaces)"
				if a.Resource == "nodes" {
					name = "nodes"
				}
			}
			r.Missing = append(r.Missing, a.Verb+" "+name)
		}
	}
	return r
}
