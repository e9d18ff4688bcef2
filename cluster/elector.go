// Package cluster runs aima as a cluster service: several daemon replicas
// share one state store (store: kubernetes) and elect one leader with a
// coordination.k8s.io Lease (lease.go: client-go's leaderelection
// algorithm on aima's own small client; docs/decisions.md says why). The leader runs
// everything that acts (starts, the runtime watch, reconcile, idle clocks,
// restarts); the others keep the store's cache warm, answer not-ready and
// take over when the leader stops renewing. Fencing: the leader asks Fence
// before every runtime and store write, and Fence refuses once the lease
// may have passed to another replica, measured from the start of the last
// renewal that succeeded, on this process's monotonic clock — so a leader
// that was paused (SIGSTOP, a long GC, a frozen VM) past its lease cannot
// act on what it believed before the pause. The daemon wires it
// (daemon/cluster.go); nothing else imports it.
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/rest"

	"aima/errs"
	"aima/internal/kubeconf"
)

// Options configure an Elector.
type Options struct {
	Rest      *rest.Config
	Namespace string
	LeaseName string
	// Identity names this replica in the Lease (default: POD_NAME, else
	// host name and process id).
	Identity      string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	Log           *slog.Logger
}

// Permissions are what the election uses in its namespace: the
// election reads the Lease, creates it when missing and updates it to
// renew or take it. The Helm chart's Role grants exactly them
// (deploy/chart_test.go compares).
var Permissions = []authv1.ResourceAttributes{
	{Group: coordinationv1.GroupName, Resource: "leases", Verb: "get"},
	{Group: coordinationv1.GroupName, Resource: "leases", Verb: "create"},
	{Group: coordinationv1.GroupName, Resource: "leases", Verb: "update"},
}

// Elector takes part in the election of one Lease.
type Elector struct {
	opts  Options
	lease *leaseLock

	elected chan struct{} // closed when this replica starts leading
	lost    chan struct{} // closed when it stops leading (or the election ends)
	leader  atomic.Value  // string: the identity last seen holding the lease
	once    sync.Once

	mu         sync.Mutex
	observed   coordinationv1.LeaseSpec // the lease as last read or written
	observedAt time.Time                // when it last changed, on this process's clock
	lastRenew  time.Time                // start of the last write naming this replica holder
}

// DefaultIdentity is POD_NAME (set from the Pod's name by the Helm
// chart), else the host name and process id.
func DefaultIdentity() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s_%d", host, os.Getpid())
}

// New prepares an election; Run takes part in it.
func New(opts Options) (*Elector, error) {
	if opts.Identity == "" {
		opts.Identity = DefaultIdentity()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.LeaseName == "" {
		return nil, errs.Invalid("lease_name", "leader election needs a lease name")
	}
	// client-go's rule: a renewal has room for a retry (with its jitter)
	// before the deadline, and the deadline ends before the lease does.
	if !(opts.LeaseDuration > opts.RenewDeadline && float64(opts.RenewDeadline) > retryJitter*float64(opts.RetryPeriod) && opts.RetryPeriod > 0) {
		return nil, errs.Invalid("lease_duration", "leader election: want lease_duration (%s) > renew_deadline (%s) > %.1f × retry_period (%s) > 0",
			opts.LeaseDuration, opts.RenewDeadline, retryJitter, opts.RetryPeriod)
	}
	cfg := rest.CopyConfig(opts.Rest)
	// Renewals must not queue behind a burst of other calls.
	cfg.QPS, cfg.Burst = 20, 40
	api, err := kubeconf.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	e := &Elector{opts: opts, lease: &leaseLock{api: api.Coordination, ns: opts.Namespace, name: opts.LeaseName},
		elected: make(chan struct{}), lost: make(chan struct{})}
	e.leader.Store("")
	return e, nil
}

// Run takes part in the election until ctx ends or this replica stops
// leading; then Lost is closed. A leader whose ctx ends releases the lease
// (so a successor need not wait for it to expire): end ctx only once the
// leader's work has stopped.
func (e *Elector) Run(ctx context.Context) {
	defer e.once.Do(func() { close(e.lost) })
	if !e.acquire(ctx) {
		return
	}
	e.opts.Log.Info("leader election: this replica leads", "identity", e.opts.Identity, "lease", e.opts.LeaseName)
	close(e.elected)
	e.renew(ctx)
	e.release()
	e.opts.Log.Warn("leader election: this replica no longer leads", "identity", e.opts.Identity)
}

// Identity is this replica's name in the lease.
func (e *Elector) Identity() string { return e.opts.Identity }

// Elected is closed when this replica starts leading.
func (e *Elector) Elected() <-chan struct{} { return e.elected }

// Lost is closed when this replica stops leading, or the election ended
// without it leading.
func (e *Elector) Lost() <-chan struct{} { return e.lost }

// Leader is the identity last seen holding the lease ("" before any).
func (e *Elector) Leader() string { return e.leader.Load().(string) }

// Fence allows a write only while this replica leads and its last
// successful renewal began less than RenewDeadline ago. Another replica
// can take the lease only LeaseDuration after it saw that renewal, which
// is later than its start; the gap (LeaseDuration - RenewDeadline) covers
// a write that passed the check and is on its way.
func (e *Elector) Fence(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-e.elected:
	default:
		return errs.New(errs.Unavailable, "this aima replica does not lead (the leader is %q); it writes nothing", e.Leader())
	}
	select {
	case <-e.lost:
		return errs.New(errs.Unavailable, "this aima replica no longer leads; it writes nothing")
	default:
	}
	if age := e.sinceRenew(); age >= e.opts.RenewDeadline {
		return errs.New(errs.Unavailable, "this aima replica's lease was last renewed %s ago (renew deadline %s): another replica may lead; it writes nothing",
			age.Round(time.Millisecond), e.opts.RenewDeadline)
	}
	return nil
}
