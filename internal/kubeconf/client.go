package kubeconf

import (
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"aima/errs"
)

// Scheme knows the only typed API groups the daemon speaks: core/v1 (Pods,
// their events and logs, Nodes), coordination.k8s.io/v1 (the leader's
// Lease) and authorization.k8s.io/v1 (doctor's access reviews). client-go's
// typed clientset, its informer factory and its leader election register
// all 56 of Kubernetes's API groups instead, which made their code and type
// data about 8.5 MiB of the daemon's resident memory (docs/decisions.md,
// "A Kubernetes client of three API groups").
var Scheme = kruntime.NewScheme()

// ParameterCodec encodes query options (ListOptions, PodLogOptions, …) for
// Client's requests.
var ParameterCodec = kruntime.NewParameterCodec(Scheme)

func init() {
	utilruntime.Must(corev1.AddToScheme(Scheme))
	utilruntime.Must(coordinationv1.AddToScheme(Scheme))
	utilruntime.Must(authorizationv1.AddToScheme(Scheme))
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
}

// Client is one REST client per API group the daemon uses, each configured
// as client-go's generated clients configure theirs (JSON, the group's
// path), over Scheme.
type Client struct {
	Core          rest.Interface // /api/v1
	Coordination  rest.Interface // /apis/coordination.k8s.io/v1
	Authorization rest.Interface // /apis/authorization.k8s.io/v1
}

// NewClient builds the three REST clients from cfg; they share its
// transport and rate limiter settings (QPS, Burst).
func NewClient(cfg *rest.Config) (*Client, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, errs.Wrap(errs.InvalidArgument, err, "kubernetes client")
	}
	codecs := serializer.NewCodecFactory(Scheme)
	limiter := cfg.RateLimiter
	if limiter == nil && cfg.QPS > 0 {
		// One budget for the three groups, as the clientset shares one.
		limiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	group := func(apiPath string, gv schema.GroupVersion) (rest.Interface, error) {
		c := rest.CopyConfig(cfg)
		c.APIPath = apiPath
		c.GroupVersion = &gv
		c.RateLimiter = limiter
		c.NegotiatedSerializer = rest.CodecFactoryForGeneratedClient(Scheme, codecs).WithoutConversion()
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		rc, err := rest.RESTClientForConfigAndClient(c, httpClient)
		if err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, err, "kubernetes client")
		}
		return rc, nil
	}
	var cl Client
	if cl.Core, err = group("/api", corev1.SchemeGroupVersion); err != nil {
		return nil, err
	}
	if cl.Coordination, err = group("/apis", coordinationv1.SchemeGroupVersion); err != nil {
		return nil, err
	}
	if cl.Authorization, err = group("/apis", authorizationv1.SchemeGroupVersion); err != nil {
		return nil, err
	}
	return &cl, nil
}
