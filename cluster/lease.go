package cluster

import (
	"context"
	"math/rand/v2"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// The election is client-go's leaderelection algorithm (acquire, renew
// within RenewDeadline every RetryPeriod, release on the way out, a lease
// judged expired by when this process last saw it change, never by the
// clocks written in it), on aima's client of three API groups: client-go's
// package imports its typed clientset, and with it all 56 of Kubernetes's
// API groups (docs/decisions.md, "A Kubernetes client of three API
// groups").

// retryJitter spreads the followers' attempts as client-go's JitterFactor.
const retryJitter = 1.2

// leaseLock reads and writes one Lease with optimistic concurrency: an
// update carries the resourceVersion last read or written, so of two
// replicas writing the same version one fails.
type leaseLock struct {
	api      rest.Interface
	ns, name string
	cur      *coordinationv1.Lease
}

func (l *leaseLock) get(ctx context.Context) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	if err := l.api.Get().Namespace(l.ns).Resource("leases").Name(l.name).Do(ctx).Into(out); err != nil {
		return nil, err
	}
	l.cur = out
	return out, nil
}

func (l *leaseLock) create(ctx context.Context, spec coordinationv1.LeaseSpec) error {
	in := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: l.ns}, Spec: spec}
	out := &coordinationv1.Lease{}
	if err := l.api.Post().Namespace(l.ns).Resource("leases").Body(in).Do(ctx).Into(out); err != nil {
		return err
	}
	l.cur = out
	return nil
}

func (l *leaseLock) update(ctx context.Context, spec coordinationv1.LeaseSpec) error {
	if l.cur == nil {
		return apierrors.NewConflict(coordinationv1.Resource("leases"), l.name, nil)
	}
	in := l.cur.DeepCopy()
	in.Spec = spec
	out := &coordinationv1.Lease{}
	if err := l.api.Put().Namespace(l.ns).Resource("leases").Name(l.name).Body(in).Do(ctx).Into(out); err != nil {
		return err
	}
	l.cur = out
	return nil
}

// acquire tries until this replica holds the lease (true) or ctx ends.
func (e *Elector) acquire(ctx context.Context) bool {
	for {
		if e.tryAcquireOrRenew(ctx) {
			return true
		}
		wait := e.opts.RetryPeriod + time.Duration(rand.Float64()*retryJitter*float64(e.opts.RetryPeriod))
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// renew keeps the lease, every RetryPeriod, until ctx ends or a renewal
// has not succeeded within RenewDeadline.
func (e *Elector) renew(ctx context.Context) {
	for {
		rctx, cancel := context.WithTimeout(ctx, e.opts.RenewDeadline)
		ok := e.renewOnce(rctx)
		cancel()
		if !ok {
			if ctx.Err() == nil {
				e.opts.Log.Warn("leader election: could not renew the lease within the renew deadline",
					"lease", e.opts.LeaseName, "renew_deadline", e.opts.RenewDeadline)
			}
			return
		}
		if !sleep(ctx, e.opts.RetryPeriod) {
			return
		}
	}
}

// renewOnce tries at once, then every RetryPeriod, until ctx ends.
func (e *Elector) renewOnce(ctx context.Context) bool {
	for {
		if e.tryAcquireOrRenew(ctx) {
			return true
		}
		if !sleep(ctx, e.opts.RetryPeriod) {
			return false
		}
	}
}

// tryAcquireOrRenew writes the lease naming this replica if it holds the
// lease, or if the lease is free or has not changed for its duration.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) bool {
	now := time.Now()
	id, secs := e.opts.Identity, int32((e.opts.LeaseDuration+time.Second-1)/time.Second)
	stamp := metav1.NewMicroTime(now)
	spec := coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, AcquireTime: &stamp, RenewTime: &stamp}
	// The leader's fast path: renew on what it last wrote.
	if old, leads := e.observedLease(); leads && e.valid(now) {
		spec.AcquireTime, spec.LeaseTransitions = old.AcquireTime, old.LeaseTransitions
		err := e.lease.update(ctx, spec)
		if err == nil {
			e.observe(spec, now, true)
			return true
		}
		e.opts.Log.Debug("leader election: renew", "err", err)
	}
	cur, err := e.lease.get(ctx)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			e.opts.Log.Debug("leader election: read the lease", "err", err)
			return false
		}
		if err := e.lease.create(ctx, spec); err != nil {
			e.opts.Log.Debug("leader election: create the lease", "err", err)
			return false
		}
		e.observe(spec, now, true)
		return true
	}
	e.observe(cur.Spec, now, false)
	old, leads := e.observedLease()
	if deref(old.HolderIdentity) != "" && e.valid(now) && !leads {
		return false // another replica holds it
	}
	if leads {
		spec.AcquireTime, spec.LeaseTransitions = old.AcquireTime, old.LeaseTransitions
	} else {
		n := deref(old.LeaseTransitions) + 1
		spec.LeaseTransitions = &n
	}
	if err := e.lease.update(ctx, spec); err != nil {
		e.opts.Log.Debug("leader election: take the lease", "err", err)
		return false
	}
	e.observe(spec, now, true)
	return true
}

// release hands the lease back (holder empty, a one-second duration) if
// this replica still holds it, so a successor need not wait for expiry.
func (e *Elector) release() {
	old, leads := e.observedLease()
	if !leads {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.RenewDeadline)
	defer cancel()
	now := metav1.NewMicroTime(time.Now())
	empty, one := "", int32(1)
	spec := coordinationv1.LeaseSpec{HolderIdentity: &empty, LeaseDurationSeconds: &one,
		AcquireTime: &now, RenewTime: &now, LeaseTransitions: old.LeaseTransitions}
	if err := e.lease.update(ctx, spec); err != nil {
		e.opts.Log.Info("leader election: could not release the lease; it expires instead", "err", err)
		return
	}
	e.observe(spec, now.Time, false)
}

// observe records the lease as read or written at now: its change time
// moves only when it changed. wrote says this replica just wrote it naming
// itself, which is a renewal that began at now (Fence's clock).
func (e *Elector) observe(spec coordinationv1.LeaseSpec, now time.Time, wrote bool) {
	e.mu.Lock()
	if !equality.Semantic.DeepEqual(spec, e.observed) || e.observedAt.IsZero() {
		e.observed, e.observedAt = spec, time.Now()
	}
	if wrote && deref(spec.HolderIdentity) == e.opts.Identity {
		e.lastRenew = now
	}
	holder := deref(e.observed.HolderIdentity)
	e.mu.Unlock()
	if prev := e.leader.Swap(holder); prev != holder && holder != "" && holder != e.opts.Identity {
		e.opts.Log.Info("leader election: the leader is another replica", "leader", holder)
	}
}

// observedLease is the lease as last seen, and whether it names this
// replica.
func (e *Elector) observedLease() (coordinationv1.LeaseSpec, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed, deref(e.observed.HolderIdentity) == e.opts.Identity
}

// valid: the lease as last seen has not lasted its duration since it last
// changed.
func (e *Elector) valid(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := time.Duration(deref(e.observed.LeaseDurationSeconds)) * time.Second
	return e.observedAt.Add(d).After(now)
}

// sinceRenew is how long ago the last renewal began (forever if none).
func (e *Elector) sinceRenew() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastRenew.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(e.lastRenew)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
