package kubernetes

import (
	"context"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"aima/errs"
	"aima/runtime"
)

// podMemo is what the runtime last reported about a Pod, so each change of
// the watch turns into the events it means, once.
type podMemo struct {
	uid           string
	scheduled     bool
	started       bool
	ended         bool
	unschedulable string // the scheduler's last message
	pullFailed    string // the kubelet's last pull failure
	steps         map[runtime.Step]bool
}

// changes returns a channel closed at the Pod's next change.
func (k *Kube) changes(name string) <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	ch, ok := k.changed[name]
	if !ok {
		ch = make(chan struct{})
		k.changed[name] = ch
	}
	return ch
}

// notify wakes the waiters of a Pod; called with k.mu held.
func (k *Kube) notifyLocked(name string) {
	if ch, ok := k.changed[name]; ok {
		close(ch)
		delete(k.changed, name)
	}
}

// onPod turns a change of one of aima's Pods into runtime events: create,
// the scheduler's verdict, a pull failure, start, OOM and die. The
// informer's first list only fills the memo (Docker's stream also starts
// with what happens after the subscription).
func (k *Kube) onPod(old, obj any, initial bool) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	l := labelsOf(p)
	k.mu.Lock()
	defer k.mu.Unlock()
	defer k.pub.kick()
	k.notifyLocked(p.Name)
	m, known := k.seen[p.Name]
	if !known || m.uid != string(p.UID) {
		m = podMemo{uid: string(p.UID), steps: map[runtime.Step]bool{}}
	}
	var evs []runtime.Event
	ev := func(action string) runtime.Event {
		return runtime.Event{ContainerID: p.Name, Action: action, Labels: l, Time: now}
	}
	if old == nil && !initial {
		evs = append(evs, ev(runtime.ActionCreate))
	}
	cs := engineStatus(p)
	if p.Spec.NodeName != "" && !m.scheduled {
		m.scheduled = true
		if !m.steps[runtime.StepScheduled] {
			m.steps[runtime.StepScheduled] = true
			e := ev(runtime.ActionProgress)
			e.Step, e.Message = runtime.StepScheduled, "assigned to node "+p.Spec.NodeName
			evs = append(evs, e)
		}
	}
	if msg, ok := unschedulable(p); ok && msg != m.unschedulable && !m.scheduled {
		m.unschedulable = msg
		e := ev(runtime.ActionProgress)
		e.Step, e.Message = runtime.StepUnschedulable, msg
		evs = append(evs, e)
	}
	if reason, msg, ok := pullFailure(p); ok && reason+msg != m.pullFailed {
		m.pullFailed = reason + msg
		e := ev(runtime.ActionProgress)
		e.Step, e.Message = runtime.StepPullFailed, reason+": "+msg
		evs = append(evs, e)
	}
	if cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil) && !m.started {
		m.started = true
		evs = append(evs, ev(runtime.ActionStart))
	}
	if ended(p) && !m.ended {
		m.ended = true
		st := stateOf(p)
		if st.OOMKilled {
			evs = append(evs, ev(runtime.ActionOOM))
		}
		e := ev(runtime.ActionDie)
		e.ExitCode, e.Reason, e.Message = st.ExitCode, st.Reason, st.Message
		evs = append(evs, e)
	}
	k.seen[p.Name] = m
	if !initial {
		for _, e := range evs {
			k.emitLocked(e)
		}
	}
}

// onPodDeleted reports a Pod's removal: destroy, with why when it had not
// ended (deleted behind aima's back, evicted, its node lost).
func (k *Kube) onPodDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	defer k.pub.kick()
	k.notifyLocked(p.Name)
	m := k.seen[p.Name]
	delete(k.seen, p.Name)
	e := runtime.Event{ContainerID: p.Name, Action: runtime.ActionDestroy, Labels: labelsOf(p), Time: time.Now()}
	own := k.deleting[string(p.UID)]
	delete(k.deleting, string(p.UID))
	if !own && !m.ended && !ended(p) {
		e.Reason, e.Message = deleteReason(p)
	}
	k.emitLocked(e)
}

// eventSteps maps the scheduler's and the kubelet's event reasons onto
// the steps of a start. Pull failures come from the container's status
// (typed), not from the kubelet's generic "Failed" event.
var eventSteps = map[string]runtime.Step{
	"Scheduled":        runtime.StepScheduled,
	"FailedScheduling": runtime.StepUnschedulable,
	"Pulling":          runtime.StepPulling,
	"Pulled":           runtime.StepPulled,
	"Created":          runtime.StepCreated,
	"Started":          runtime.StepStarted,
}

// onEvent forwards a cluster event about one of aima's Pods as an
// ActionProgress event, with the cluster's message.
func (k *Kube) onEvent(obj any, initial bool) {
	ce, ok := obj.(*corev1.Event)
	if !ok || initial || ce.InvolvedObject.Kind != "Pod" {
		return
	}
	step, ok := eventSteps[ce.Reason]
	if !ok {
		return
	}
	p, err := k.pod(ce.InvolvedObject.Name)
	if err != nil || p.UID != ce.InvolvedObject.UID {
		return // not one of aima's Pods (or an earlier Pod of that name)
	}
	t := ce.LastTimestamp.Time
	if t.IsZero() {
		t = ce.EventTime.Time
	}
	if t.IsZero() {
		t = time.Now()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	m, known := k.seen[p.Name]
	if !known || m.uid != string(p.UID) {
		m = podMemo{uid: string(p.UID), steps: map[runtime.Step]bool{}}
	}
	switch step {
	case runtime.StepUnschedulable:
		if m.unschedulable == ce.Message || m.scheduled {
			return
		}
		m.unschedulable = ce.Message
	case runtime.StepScheduled:
		m.scheduled = true
		if m.steps[step] {
			return
		}
	}
	m.steps[step] = true
	k.seen[p.Name] = m
	k.emitLocked(runtime.Event{ContainerID: p.Name, Action: runtime.ActionProgress, Step: step, Message: ce.Message, Labels: labelsOf(p), Time: t})
}

// emitLocked hands an event to every subscriber and keeps it for replay;
// called with k.mu held.
func (k *Kube) emitLocked(e runtime.Event) {
	k.recent = append(k.recent, e)
	if len(k.recent) > 2*replayLen {
		k.recent = append(k.recent[:0:0], k.recent[len(k.recent)-replayLen:]...)
	}
	for s := range k.subs {
		s.push(e)
	}
}

// subscriber is one Events stream. The watch's handlers never block on a
// reader: events queue per subscriber, and one that falls maxBacklog
// behind is ended with errs.Unavailable (resubscribe with Since), so a
// stuck reader neither stalls the others nor grows without bound.
type subscriber struct {
	labels  map[string]string
	wake    chan struct{}
	queue   []runtime.Event
	overrun bool
}

const maxBacklog = 10000

// push queues e if it matches; called with k.mu held.
func (s *subscriber) push(e runtime.Event) {
	for key, v := range s.labels {
		if e.Labels[key] != v {
			return
		}
	}
	if len(s.queue) >= maxBacklog {
		s.overrun = true
	} else {
		s.queue = append(s.queue, e)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Events streams aima's Pod events derived from the runtime's one watch of
// Pods and one of their events (see runtime.Runtime). Since replays the
// events of the last replayLen the runtime still holds.
func (k *Kube) Events(ctx context.Context, opts runtime.EventOptions) (<-chan runtime.Event, <-chan error) {
	out := make(chan runtime.Event, 64)
	errc := make(chan error, 1)
	if err := k.watch(ctx); err != nil {
		errc <- err
		close(out)
		close(errc)
		return out, errc
	}
	s := &subscriber{labels: maps.Clone(opts.Labels), wake: make(chan struct{}, 1)}
	k.mu.Lock()
	if !opts.Since.IsZero() {
		for _, e := range k.recent {
			if e.Time.After(opts.Since) {
				s.push(e)
			}
		}
	}
	k.subs[s] = struct{}{}
	k.mu.Unlock()
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		defer close(out)
		defer close(errc)
		defer func() {
			k.mu.Lock()
			delete(k.subs, s)
			k.mu.Unlock()
		}()
		for {
			k.mu.Lock()
			batch, overrun := s.queue, s.overrun
			s.queue = nil
			k.mu.Unlock()
			for _, e := range batch {
				select {
				case out <- e:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				case <-k.ctx.Done():
					errc <- errs.New(errs.Unavailable, "kubernetes runtime closed")
					return
				}
			}
			if overrun {
				errc <- errs.New(errs.Unavailable, "kubernetes events: the reader fell %d events behind; resubscribe", maxBacklog)
				return
			}
			select {
			case <-s.wake:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case <-k.ctx.Done():
				errc <- errs.New(errs.Unavailable, "kubernetes runtime closed")
				return
			}
		}
	}()
	return out, errc
}

// slimEvent keeps of a Pod event what onEvent reads: the informer caches
// every Pod event of the namespace (several per start, an hour each by the
// API server's default), and nothing else reads that cache.
func slimEvent(obj any) (any, error) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return obj, nil
	}
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: e.Name, Namespace: e.Namespace, UID: e.UID, ResourceVersion: e.ResourceVersion},
		InvolvedObject: corev1.ObjectReference{Kind: e.InvolvedObject.Kind, Name: e.InvolvedObject.Name, UID: e.InvolvedObject.UID},
		Reason:         e.Reason,
		Message:        e.Message,
		LastTimestamp:  e.LastTimestamp,
		EventTime:      e.EventTime,
	}, nil
}
