package kubernetes

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"aima/errs"
	"aima/runtime"
)

// StartContainer lifts the start gate, so the scheduler places the Pod and
// the node pulls the image and starts the engine, and returns once the
// engine's process started (or already ended: its exit is WaitExit's to
// report), as Docker's start does. An image the node cannot pull fails it
// at once with the kubelet's own message (kind NotFound); while no node
// fits, it waits (the scheduler's message arrives as an ActionProgress
// event) until ctx ends.
func (k *Kube) StartContainer(ctx context.Context, id string) error {
	if err := k.watch(ctx); err != nil {
		return err
	}
	pod, err := k.pod(id)
	if err != nil {
		return classify(err, "start pod "+id)
	}
	if gated(pod) {
		patch := []byte(`[{"op":"test","path":"/spec/schedulingGates","value":[{"name":"` + startGate + `"}]},{"op":"remove","path":"/spec/schedulingGates"}]`)
		err := k.patchPod(ctx, id, types.JSONPatchType, patch)
		if err != nil && !apierrors.IsInvalid(err) { // Invalid: the test failed, someone lifted it already
			return classify(err, "start pod "+id)
		}
	}
	var waiting string
	err = k.waitPod(ctx, id, func(p *corev1.Pod) (bool, error) {
		if p == nil {
			return true, errs.New(errs.NotFound, "start pod %s: the pod was deleted", id)
		}
		if reason, msg, ok := pullFailure(p); ok {
			return true, errs.Wrap(errs.NotFound, runtime.ErrImagePull, "pull image %s on node %s: %s: %s", p.Spec.Containers[0].Image, p.Spec.NodeName, reason, msg)
		}
		if cs := engineStatus(p); ended(p) || (cs != nil && cs.State.Running != nil) {
			return true, nil
		}
		waiting, _ = unschedulable(p)
		return false, nil
	})
	if err != nil && ctx.Err() != nil && waiting == "" {
		// The scheduler's event may have come before its status update.
		k.mu.Lock()
		waiting = k.seen[id].unschedulable
		k.mu.Unlock()
	}
	if err != nil && ctx.Err() != nil && waiting != "" {
		return fmt.Errorf("start pod %s: %w (no node fits: %s)", id, err, waiting)
	}
	return err
}

// pod reads a Pod from the watch's cache.
func (k *Kube) pod(name string) (*corev1.Pod, error) {
	p, err := k.podLister.Pods(k.ns).Get(name)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// waitPod calls done with the Pod (nil once it is gone) now and after each
// change the watch sees, until done says so or ctx ends.
func (k *Kube) waitPod(ctx context.Context, name string, done func(*corev1.Pod) (bool, error)) error {
	for {
		changed := k.changes(name)
		p, err := k.pod(name)
		if err != nil && !apierrors.IsNotFound(err) {
			return classify(err, "pod "+name)
		}
		if ok, err := done(p); ok {
			return err
		}
		if err := k.awaitChange(ctx, changed, "pod "+name); err != nil {
			return err
		}
	}
}

// awaitChange waits for changed (taken before the state it follows was
// read, so no change is missed), or the poll fallback, and fails when ctx
// or the runtime ends; what names the wait in the error.
func (k *Kube) awaitChange(ctx context.Context, changed <-chan struct{}, what string) error {
	t := time.NewTimer(pollFallback)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	case <-k.ctx.Done():
		return errs.New(errs.Unavailable, "kubernetes runtime closed")
	}
	return nil
}

// InspectContainer reports the Pod's state from the watch's cache.
func (k *Kube) InspectContainer(ctx context.Context, id string) (runtime.ContainerState, error) {
	if err := k.watch(ctx); err != nil {
		return runtime.ContainerState{}, err
	}
	p, err := k.pod(id)
	if err != nil {
		return runtime.ContainerState{}, classify(err, "inspect pod "+id)
	}
	return stateOf(p), nil
}

// ListContainers returns aima's Pods carrying all of opts.Labels, from the
// watch's cache (no API request).
func (k *Kube) ListContainers(ctx context.Context, opts runtime.ListOptions) ([]runtime.ContainerState, error) {
	if err := k.watch(ctx); err != nil {
		return nil, err
	}
	sel := labels.Set{}
	for key, v := range opts.Labels {
		if len(validation.IsValidLabelValue(v)) == 0 {
			sel[key] = v // the rest are compared from the annotations below
		}
	}
	pods, err := k.podLister.Pods(k.ns).List(labels.SelectorFromSet(sel))
	if err != nil {
		return nil, classify(err, "list pods")
	}
	out := make([]runtime.ContainerState, 0, len(pods))
next:
	for _, p := range pods {
		for key, v := range opts.Labels {
			if labelOf(p, key) != v {
				continue next
			}
		}
		out = append(out, stateOf(p))
	}
	return out, nil
}

// StopContainer ends a Pod's engine and keeps the Pod, as Docker keeps a
// stopped container, so the stopped run's log stays readable (`logs`, and
// `logs --previous` once the next start has saved it) until the next start
// removes it. Kubernetes has no "stop": aima sets the Pod's
// activeDeadlineSeconds to 1, so the kubelet ends it as past its deadline
// (SIGTERM, then SIGKILL after the Pod's grace period, ContainerSpec
// StopTimeout), and the Pod stays Failed with reason DeadlineExceeded.
// A Pod no kubelet runs yet (gated, or waiting for a node) is deleted,
// and so is one whose kubelet does not end it within opts.Timeout and
// stopKeepMargin (a node that does not answer): stopping must not hang on
// a node. A Pod that already ended is kept as it is.
func (k *Kube) StopContainer(ctx context.Context, id string, opts runtime.StopOptions) error {
	if err := k.watch(ctx); err != nil {
		return err
	}
	p, err := k.pod(id)
	if err != nil {
		return classify(err, "stop pod "+id)
	}
	if ended(p) {
		return k.waitUncounted(ctx, p)
	}
	secs := graceSeconds(opts.Timeout)
	if gated(p) || p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
		return k.deleteAndWait(ctx, p, secs, "stop pod "+id)
	}
	patch := []byte(`{"spec":{"activeDeadlineSeconds":1}}`)
	if err := k.patchPod(ctx, p.Name, types.StrategicMergePatchType, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return classify(err, "stop pod "+id)
	}
	wctx, cancel := context.WithTimeout(ctx, opts.Timeout+stopKeepMargin)
	defer cancel()
	err = k.waitPod(wctx, p.Name, func(cur *corev1.Pod) (bool, error) {
		return cur == nil || cur.UID != p.UID || ended(cur), nil
	})
	if err == nil {
		// An ended Pod requests nothing: the GPU node watch (bound Pods
		// not ended) drops it, as it drops a deleted one.
		return k.waitUncounted(ctx, p)
	}
	if ctx.Err() != nil {
		return err
	}
	k.log.Warn("the kubelet did not end the pod past its deadline; deleting it", "pod", p.Name, "node", p.Spec.NodeName)
	return k.deleteAndWait(ctx, p, secs, "stop pod "+id)
}

// stopKeepMargin is how long past the stop's grace period StopContainer
// waits for the kubelet to end a Pod before deleting it instead.
const stopKeepMargin = 15 * time.Second

// graceSeconds is a grace period in whole seconds, at least one.
func graceSeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}

// RemoveContainer deletes the Pod (at once with Force) and waits until it
// is gone. A deletion already in progress is waited for.
func (k *Kube) RemoveContainer(ctx context.Context, id string, opts runtime.RemoveOptions) error {
	if err := k.watch(ctx); err != nil {
		return err
	}
	p, err := k.pod(id)
	if err != nil {
		return classify(err, "remove pod "+id)
	}
	var grace int64 = 30
	if opts.Force {
		grace = 0
	}
	return k.deleteAndWait(ctx, p, grace, "remove pod "+id)
}

func (k *Kube) deleteAndWait(ctx context.Context, p *corev1.Pod, grace int64, what string) error {
	// A destroy event of this Pod is aima's own doing, not a deletion
	// behind its back.
	k.mu.Lock()
	k.deleting[string(p.UID)] = true
	k.mu.Unlock()
	// The UID precondition keeps a delete from hitting a later Pod of the
	// same name.
	err := k.deletePod(ctx, p.Name, &metav1.DeleteOptions{
		GracePeriodSeconds: &grace,
		Preconditions:      &metav1.Preconditions{UID: &p.UID},
	})
	if err != nil {
		k.mu.Lock()
		delete(k.deleting, string(p.UID))
		k.mu.Unlock()
		if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return classify(err, what)
		}
	}
	if err := k.waitPod(ctx, p.Name, func(cur *corev1.Pod) (bool, error) {
		return cur == nil || cur.UID != p.UID, nil
	}); err != nil {
		return err
	}
	return k.waitUncounted(ctx, p)
}

// waitUncounted waits, once the GPU node watch runs, until its cache no
// longer holds the ended or deleted Pod, so that GPUNodes right after a
// stop does not count the Pod's GPUs against its node: a placement that
// follows a stop (an eviction, a drain) sees them free. The watch is a second one on
// the same API server; it sees the deletion moments after the namespace's.
func (k *Kube) waitUncounted(ctx context.Context, p *corev1.Pod) error {
	w := &k.nodeWatch
	if !w.started.Load() {
		return nil
	}
	key := p.Namespace + "/" + p.Name
	for {
		changed := k.changes(countedKey(key))
		obj, ok, _ := w.pods.GetStore().GetByKey(key)
		if cur, isPod := obj.(*corev1.Pod); !ok || !isPod || cur.UID != p.UID {
			return nil
		}
		if err := k.awaitChange(ctx, changed, "pod "+p.Name+" still counted on its node"); err != nil {
			return err
		}
	}
}

// countedKey is the key of a Pod's changes in the GPU node watch, apart
// from the namespace watch's (keyed by the bare name).
func countedKey(nsName string) string { return "node-watch:" + nsName }

// WaitExit delivers the engine's end once the Pod ended: its exit code,
// with Reason and Message when the cluster says more (OOMKilled, evicted,
// node lost). A Pod deleted before it ended comes back as Err (NotFound)
// with its Reason. A Pod never started (still gated) is reported at once
// with code 0.
func (k *Kube) WaitExit(ctx context.Context, id string) <-chan runtime.ExitStatus {
	out := make(chan runtime.ExitStatus, 1)
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		defer close(out)
		if err := k.watch(ctx); err != nil {
			out <- runtime.ExitStatus{Err: err}
			return
		}
		var last *corev1.Pod
		var st runtime.ExitStatus
		err := k.waitPod(ctx, id, func(p *corev1.Pod) (bool, error) {
			switch {
			case p == nil && last == nil:
				st.Err = errs.New(errs.NotFound, "wait pod %s: no such pod", id)
			case p == nil:
				st.Reason, st.Message = deleteReason(last)
				st.Err = errs.New(errs.NotFound, "wait pod %s: %s", id, st.Message)
			case gated(p):
			case ended(p):
				s := stateOf(p)
				st.ExitCode, st.Reason, st.Message = s.ExitCode, s.Reason, s.Message
			default:
				last = p
				return false, nil
			}
			return true, nil
		})
		if err != nil {
			st = runtime.ExitStatus{Err: err}
		}
		out <- st
	}()
	return out
}
