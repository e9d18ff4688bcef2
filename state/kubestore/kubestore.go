// Package kubestore is the state.Store kept by a Kubernetes API server
// (store: kubernetes): every key is one AimaRecord custom resource in the
// configured namespace, written with its resourceVersion (optimistic
// concurrency, the API server's own), and read from a cache the store
// keeps by watching the records, so reads cost what the embedded store's
// cost. Several daemons may open the same store: they see each other's
// writes through the watch, and a write based on a stale read is refused
// with state.ErrConflict, never applied over the newer one.
//
// The records' CustomResourceDefinition is deploy/helm/aima/crds/
// aimarecords.yaml; the store does not install it (that needs rights over
// the whole cluster, which a daemon should not hold).
package kubestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"aima/errs"
	"aima/internal/kubeconf"
	"aima/state"
)

// Options say which API server, namespace and store to open.
type Options struct {
	// Kubeconfig, Context and InCluster pick the API server (see
	// kubeconf.REST); Rest, when set, is used instead.
	Kubeconfig string
	Context    string
	InCluster  bool
	Rest       *rest.Config
	// Namespace holds the records (default "default").
	Namespace string
	// Name tells this store's records from another's in the same
	// namespace (label aima.dev/store; default "aima").
	Name string
	// UserAgent names the client in the API server's logs.
	UserAgent string
	// SyncTimeout bounds the first full read at Open (default 30 s).
	SyncTimeout time.Duration
	// WriteTimeout bounds each request of a write (default 15 s): an API
	// server that cannot reach etcd holds a request for its own timeout
	// (a minute) before it answers; the store refuses the write sooner,
	// errs.Unavailable, and the caller may try again.
	WriteTimeout time.Duration
}

// Store is the state.Store in the API server.
type Store struct {
	ri           dynamic.ResourceInterface
	ns           string
	name         string
	cache        *watchCache
	writeTimeout time.Duration

	cancel context.CancelFunc
	done   chan struct{}
	closed atomic.Bool
	close  sync.Once
}

var (
	_ state.Store   = (*Store)(nil)
	_ state.Batcher = (*Store)(nil)
)

// Open connects to the API server, checks that the records' resource is
// served and readable, and returns once the store's cache holds every
// record. A missing CustomResourceDefinition or missing rights are
// errs.Unavailable / errs.PermissionDenied naming what to do.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg := opts.Rest
	if cfg == nil {
		var err error
		if cfg, err = kubeconf.REST(opts.Kubeconfig, opts.Context, opts.InCluster); err != nil {
			return nil, err
		}
	}
	cfg = rest.CopyConfig(cfg)
	if opts.UserAgent != "" {
		cfg.UserAgent = opts.UserAgent
	}
	// Writes come in bursts (a start's events, a migration): the watch,
	// not polling, carries the steady state.
	cfg.QPS, cfg.Burst = 100, 200
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, errs.Wrap(errs.InvalidArgument, err, "kubernetes client")
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Name == "" {
		opts.Name = "aima"
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = 30 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	s := &Store{ri: dc.Resource(GVR).Namespace(opts.Namespace), ns: opts.Namespace, name: opts.Name,
		cache: newWatchCache(), done: make(chan struct{}), writeTimeout: opts.WriteTimeout}
	selector := labels.Set{LabelStore: opts.Name}.String()
	probeCtx, cancelProbe := context.WithTimeout(ctx, opts.SyncTimeout)
	defer cancelProbe()
	if _, err := s.ri.List(probeCtx, metav1.ListOptions{LabelSelector: selector, Limit: 1}); err != nil {
		return nil, s.openError(err)
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return s.ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return s.ri.Watch(ctx, o)
		},
	}
	expected := &unstructured.Unstructured{}
	expected.SetAPIVersion(Group + "/" + Version)
	expected.SetKind(Kind)
	r := cache.NewReflectorWithOptions(lw, expected, s.cache, cache.ReflectorOptions{Name: "aima-state-store"})
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		r.RunWithContext(runCtx)
	}()
	select {
	case <-s.cache.synced:
		return s, nil
	case <-probeCtx.Done():
		_ = s.Close()
		return nil, errs.New(errs.Unavailable, "state store in namespace %s: the records could not be read within %s", s.ns, opts.SyncTimeout)
	}
}

// openError explains why the records cannot be read.
func (s *Store) openError(err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return errs.New(errs.Unavailable, "state store: the API server does not serve %s; install the CustomResourceDefinition (kubectl apply -f deploy/helm/aima/crds/aimarecords.yaml, or the Helm chart)", CRDName)
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return errs.Wrap(errs.PermissionDenied, err, "state store: no right to read %s in namespace %s (the Helm chart's Role grants what aima needs)", Resource, s.ns)
	}
	return s.wrap(err, "open", "")
}

// Namespace and Name say where the records are (for diagnostics).
func (s *Store) Namespace() string { return s.ns }
func (s *Store) Name() string      { return s.name }

// Len is the number of records in the cache.
func (s *Store) Len() int { return s.cache.len() }

// Describe implements state.Describer.
func (s *Store) Describe() state.Info {
	return state.Info{Backend: "kubernetes", Path: s.ns + "/" + Resource + "." + Group + " (store " + s.name + ")"}
}

// DefaultWriteTimeout is Options.WriteTimeout's default.
const DefaultWriteTimeout = 15 * time.Second

var errClosed = errs.New(errs.Unavailable, "state: store is closed")

// live is the prologue of every operation: the caller's context not ended
// (its error returned unwrapped) and the store not closed.
func (s *Store) live(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// check is live for an operation on one key, which must not be empty.
func (s *Store) check(ctx context.Context, key string) error {
	if key == "" && ctx.Err() == nil {
		return errs.New(errs.InvalidArgument, "state: empty key")
	}
	return s.live(ctx)
}

// Get answers from the cache.
func (s *Store) Get(ctx context.Context, key string) (state.Entry, bool, error) {
	if err := s.check(ctx, key); err != nil {
		return state.Entry{}, false, err
	}
	e, ok := s.cache.get(key)
	return e, ok, nil
}

// List answers from the cache.
func (s *Store) List(ctx context.Context, prefix string) ([]state.Entry, error) {
	if err := s.live(ctx); err != nil {
		return nil, err
	}
	return s.cache.list(prefix), nil
}

// Close stops the watch. Later calls fail with errs.Unavailable.
func (s *Store) Close() error {
	s.close.Do(func() {
		s.closed.Store(true)
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
	})
	return nil
}

func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errTimedOut ends a request the API server did not answer within the
// store's WriteTimeout (the cause of the request's context).
var errTimedOut = errors.New("the API server did not answer in time")

// bounded runs one request of a write within the store's WriteTimeout;
// the timeout, told from the end of the caller's own context, is an
// error wrapping errTimedOut.
func (s *Store) bounded(ctx context.Context, call func(context.Context) error) error {
	rctx, cancel := context.WithTimeoutCause(ctx, s.writeTimeout, errTimedOut)
	defer cancel()
	err := call(rctx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), errTimedOut) {
		return fmt.Errorf("%w (%v)", errTimedOut, err)
	}
	return err
}

// wrap classifies an API error. The caller's context errors pass
// unwrapped; a request the API server left unanswered past WriteTimeout
// is errs.Unavailable, as is any error that is not the caller's fault:
// the API server or etcd cannot serve now, and the write may be tried
// again (a create that did land meanwhile is then a conflict).
func (s *Store) wrap(err error, op, key string) error {
	var e *errs.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errTimedOut):
		return errs.Wrap(errs.Unavailable, errTimedOut, "state store %s: %s %q: no answer within %s", s.ns, op, key, s.writeTimeout)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &e):
		return err
	case apierrors.IsInvalid(err), apierrors.IsRequestEntityTooLargeError(err), apierrors.IsBadRequest(err):
		return errs.Wrap(errs.InvalidArgument, err, "state: %s %q", op, key)
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return errs.Wrap(errs.PermissionDenied, err, "state store %s: %s %q", s.ns, op, key)
	}
	return errs.Wrap(errs.Unavailable, err, "state store %s: %s %q", s.ns, op, key)
}

func conflict(op, key string) error {
	return errs.Wrap(errs.Conflict, state.ErrConflict, "%s %q", op, key)
}

// Resync reads every record from the API server (a consistent list) into
// the cache: afterwards the cache holds at least every write the API
// server had taken when Resync began. A replica calls it when it is
// elected, before it builds anything on the store, so the last writes of
// the previous leader are there even if the watch has not told of them
// yet.
func (s *Store) Resync(ctx context.Context) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	l, err := s.ri.List(ctx, metav1.ListOptions{LabelSelector: labels.Set{LabelStore: s.name}.String()})
	if err != nil {
		return s.wrap(err, "list", "")
	}
	objs := make([]any, len(l.Items))
	for i := range l.Items {
		objs[i] = &l.Items[i]
	}
	return s.cache.Replace(objs, l.GetResourceVersion())
}
