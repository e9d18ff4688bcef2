package kubernetes

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"aima/errs"
	"aima/internal/kubeconf"
	"aima/runtime"
)

// Endpoint modes: how the daemon reaches an engine in a Pod.
const (
	EndpointAuto  = "auto"   // pod_ip when the daemon runs in the cluster, else proxy
	EndpointPodIP = "pod_ip" // straight to the Pod's IP (needs a route to the Pod network)
	EndpointProxy = "proxy"  // through the API server's Pod proxy (works from anywhere the API is reachable)
)

// Model volume kinds: how model files reach a Pod.
const (
	ModelHostPath = "host_path" // the model's path on the node, mounted read-only
	ModelPVC      = "pvc"       // a PersistentVolumeClaim holding one directory per model ID
)

// Toleration is a Pod toleration for engine Pods.
type Toleration struct {
	Key      string
	Operator string // Equal (default) or Exists
	Value    string
	Effect   string // NoSchedule, PreferNoSchedule, NoExecute or empty (all)
}

// Options configure New.
type Options struct {
	// Kubeconfig is the kubeconfig file; empty means the in-cluster config
	// when InCluster, else KUBECONFIG or ~/.kube/config.
	Kubeconfig string
	// Context is the kubeconfig context (empty: its current context).
	Context string
	// InCluster uses the service account of the Pod the daemon runs in.
	InCluster bool
	// Namespace engine Pods run in (default "default").
	Namespace string
	// NodeSelector, Tolerations and ServiceAccount go on every engine Pod.
	NodeSelector   map[string]string
	Tolerations    []Toleration
	ServiceAccount string
	// ModelVolume is ModelHostPath (default) or ModelPVC; ModelClaim and
	// ModelMountPath (default /models) describe the claim.
	ModelVolume    string
	ModelClaim     string
	ModelMountPath string
	// Endpoint is EndpointAuto (default), EndpointPodIP or EndpointProxy.
	Endpoint string
	// StoreID is the daemon's state store identity (runtime.LabelStore):
	// only Pods carrying it get their engine port published here.
	StoreID string
	// UserAgent names the daemon in the API server's logs.
	UserAgent string
	// Log receives what the runtime does on its own (publishing ports).
	Log *slog.Logger
}

// Kube is the runtime.Runtime backed by a Kubernetes cluster: one Pod per
// container (see doc.go).
type Kube struct {
	api      *kubeconf.Client
	rest     *rest.Config
	ns       string
	opts     Options
	endpoint string // EndpointPodIP or EndpointProxy, decided
	log      *slog.Logger

	ctx    context.Context // the runtime's lifetime; Close ends it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	startOnce sync.Once
	pods      cache.SharedIndexInformer
	podLister listersv1.PodLister
	events    cache.SharedIndexInformer
	nodeWatch nodeWatch // the cluster's GPU nodes (nodes.go)

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	recent  []runtime.Event          // the last replayLen events, for Events with Since
	changed map[string]chan struct{} // per Pod name: closed when the Pod changes
	seen    map[string]podMemo       // what was last reported per Pod
	// deleting holds the UIDs of Pods aima itself deletes (stop, remove).
	deleting map[string]bool
	pub      *publisher
}

var _ runtime.Runtime = (*Kube)(nil)

// containerName is the one container of an engine Pod.
const containerName = "engine"

// New returns a Kubernetes runtime. It does not contact the cluster; the
// watches start with the first call that needs them.
func New(opts Options) (*Kube, error) {
	cfg, err := restConfig(opts)
	if err != nil {
		return nil, err
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "aima"
	}
	cfg.UserAgent = opts.UserAgent
	// The client's default (5 QPS) throttles a burst of starts; the
	// watches, not polling, carry the steady state.
	cfg.QPS, cfg.Burst = 50, 100
	api, err := kubeconf.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.ModelMountPath == "" {
		opts.ModelMountPath = "/models"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	endpoint := opts.Endpoint
	switch endpoint {
	case "", EndpointAuto:
		endpoint = EndpointProxy
		if opts.InCluster {
			endpoint = EndpointPodIP
		}
	case EndpointPodIP, EndpointProxy:
	default:
		return nil, errs.Invalid("endpoint", "kubernetes endpoint %q: want auto, pod_ip or proxy", opts.Endpoint)
	}
	switch opts.ModelVolume {
	case "", ModelHostPath:
	case ModelPVC:
		if opts.ModelClaim == "" {
			return nil, errs.Invalid("model_volume", "kubernetes model volume pvc needs a claim name")
		}
	default:
		return nil, errs.Invalid("model_volume", "kubernetes model volume %q: want host_path or pvc", opts.ModelVolume)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &Kube{
		api: api, rest: cfg, ns: opts.Namespace, opts: opts, endpoint: endpoint, log: opts.Log,
		ctx: ctx, cancel: cancel,
		subs:     map[*subscriber]struct{}{},
		changed:  map[string]chan struct{}{},
		seen:     map[string]podMemo{},
		deleting: map[string]bool{},
	}
	k.pub = newPublisher(k)
	return k, nil
}

// restConfig picks the in-cluster config or a kubeconfig file and context.
func restConfig(opts Options) (*rest.Config, error) {
	return kubeconf.REST(opts.Kubeconfig, opts.Context, opts.InCluster)
}

// Namespace is where the runtime's Pods live.
func (k *Kube) Namespace() string { return k.ns }

// EndpointMode is how engines are reached: EndpointPodIP or EndpointProxy.
func (k *Kube) EndpointMode() string { return k.endpoint }

// Close stops the watches and the published ports and waits for their
// goroutines.
func (k *Kube) Close() error {
	k.cancel()
	k.pub.closeAll()
	k.wg.Wait()
	return nil
}

// Ping asks the API server for its version, within ctx.
func (k *Kube) Ping(ctx context.Context) error {
	res := k.api.Core.Get().AbsPath("/version").Do(ctx)
	return classify(res.Error(), "reach the kubernetes API server")
}

// ServerVersion is the API server's gitVersion.
func (k *Kube) ServerVersion(ctx context.Context) (string, error) {
	raw, err := k.api.Core.Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", classify(err, "kubernetes version")
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", errs.Wrap(errs.Internal, err, "kubernetes version")
	}
	return v.GitVersion, nil
}

// watch starts the two informers the whole runtime shares (aima's Pods in
// the namespace, and the namespace's Pod events) once, and waits within
// ctx until their caches hold the cluster's state.
func (k *Kube) watch(ctx context.Context) error {
	k.startOnce.Do(k.startInformers)
	return k.waitSynced(ctx, func() bool { return k.pods.HasSynced() && k.events.HasSynced() })
}

func (k *Kube) startInformers() {
	cs := k.api.Core
	managed := labels.SelectorFromSet(labels.Set{runtime.LabelManaged: "true"}).String()
	podLW := cache.NewFilteredListWatchFromClient(cs, "pods", k.ns, func(o *metav1.ListOptions) { o.LabelSelector = managed })
	k.pods = cache.NewSharedIndexInformer(podLW, &corev1.Pod{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = k.pods.SetTransform(slimManagedPod)
	k.podLister = listersv1.NewPodLister(k.pods.GetIndexer())
	_, _ = k.pods.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, initial bool) { k.onPod(nil, obj, initial) },
		UpdateFunc: func(old, obj any) { k.onPod(old, obj, false) },
		DeleteFunc: func(obj any) { k.onPodDeleted(obj) },
	})
	podEvents := fields.OneTermEqualSelector("involvedObject.kind", "Pod").String()
	evLW := cache.NewFilteredListWatchFromClient(cs, "events", k.ns, func(o *metav1.ListOptions) { o.FieldSelector = podEvents })
	k.events = cache.NewSharedIndexInformer(evLW, &corev1.Event{}, 0, cache.Indexers{})
	_ = k.events.SetTransform(slimEvent)
	_, _ = k.events.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, initial bool) { k.onEvent(obj, initial) },
		UpdateFunc: func(_, obj any) { k.onEvent(obj, false) },
	})
	for _, inf := range []cache.SharedIndexInformer{k.pods, k.events} {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			inf.RunWithContext(k.ctx)
		}()
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		k.pub.run(k.ctx)
	}()
}

// replayLen is how many recent events Events can replay (Since), as many
// as Docker keeps in its ring buffer.
const replayLen = 256

// pollFallback bounds how long a waiter trusts the watch alone: a missed
// notification costs at most this much.
const pollFallback = 2 * time.Second
