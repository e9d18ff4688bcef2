package kubernetes

import (
	"context"
	"io"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"aima/internal/kubeconf"
)

// The API calls the runtime makes beside its watches, on kubeconf's client
// of three API groups (not client-go's typed clientset: see
// docs/decisions.md, "A Kubernetes client of three API groups").

func (k *Kube) createPod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	err := k.api.Core.Post().Namespace(k.ns).Resource("pods").
		VersionedParams(&metav1.CreateOptions{}, kubeconf.ParameterCodec).
		Body(pod).Do(ctx).Into(out)
	return out, err
}

func (k *Kube) patchPod(ctx context.Context, name string, pt types.PatchType, patch []byte) error {
	return k.api.Core.Patch(pt).Namespace(k.ns).Resource("pods").Name(name).
		VersionedParams(&metav1.PatchOptions{}, kubeconf.ParameterCodec).
		Body(patch).Do(ctx).Error()
}

func (k *Kube) deletePod(ctx context.Context, name string, opts *metav1.DeleteOptions) error {
	return k.api.Core.Delete().Namespace(k.ns).Resource("pods").Name(name).
		Body(opts).Do(ctx).Error()
}

func (k *Kube) podLog(ctx context.Context, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return k.api.Core.Get().Namespace(k.ns).Resource("pods").Name(name).SubResource("log").
		VersionedParams(opts, kubeconf.ParameterCodec).Stream(ctx)
}

// listOne lists at most one object of a core resource (namespace "" for
// all namespaces): a permission check.
func (k *Kube) listOne(ctx context.Context, resource, namespace, fieldSelector string) error {
	req := k.api.Core.Get().Resource(resource).
		VersionedParams(&metav1.ListOptions{Limit: 1, FieldSelector: fieldSelector}, kubeconf.ParameterCodec)
	if namespace != "" {
		req = req.Namespace(namespace)
	}
	return req.Do(ctx).Error()
}

func (k *Kube) reviewAccess(ctx context.Context, review *authv1.SelfSubjectAccessReview) (*authv1.SelfSubjectAccessReview, error) {
	out := &authv1.SelfSubjectAccessReview{}
	err := k.api.Authorization.Post().Resource("selfsubjectaccessreviews").
		VersionedParams(&metav1.CreateOptions{}, kubeconf.ParameterCodec).
		Body(review).Do(ctx).Into(out)
	return out, err
}
