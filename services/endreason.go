package services

import (
	"sync"

	"aima/runtime"
)

// typedEnd completes a failure with the runtime's typed reason for an end
// the engine did not choose (runtime.Reason: Kubernetes says why a Pod
// ended or went away; Docker never does): the kind says it as data, and
// the cluster's own words follow the reason. Evicted and node lost carry
// no exit code (the cluster ended the Pod, not the engine, and a Pod
// failed as a whole has none); a deletion behind aima's back stays
// disappeared, an OOM kill oom.
func (f *failure) typedEnd(r runtime.Reason, msg string) {
	switch r {
	case runtime.ReasonEvicted:
		f.kind, f.exitCode, f.oom = FailureEvicted, nil, false
	case runtime.ReasonNodeLost:
		f.kind, f.exitCode, f.oom = FailureNodeLost, nil, false
	case runtime.ReasonOOMKilled:
		f.kind, f.oom = FailureOOM, true
		return
	case runtime.ReasonDeleted:
		f.kind = FailureDisappeared
		return
	default:
		return
	}
	if msg != "" {
		f.reason += ": " + msg
	}
}

// endWhat says how a container ended, for a failure's reason, with the
// runtime's typed reason when it gave one.
func endWhat(r runtime.Reason, fallback string) string {
	switch r {
	case runtime.ReasonEvicted:
		return "pod evicted by the cluster"
	case runtime.ReasonNodeLost:
		return "the pod's node was lost"
	case runtime.ReasonDeleted:
		return "pod deleted outside aima"
	}
	return fallback
}

// schedulerWait holds the cluster scheduler's last message about a start's
// Pod while no node fits it. The steps follower writes it and the start's
// outcome reads it, from two goroutines.
type schedulerWait struct {
	mu  sync.Mutex
	msg string
}

// waiting records a step of the start: unschedulable keeps the scheduler's
// message, scheduled clears it.
func (w *schedulerWait) waiting(step runtime.Step, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch step {
	case runtime.StepUnschedulable:
		w.msg = msg
	case runtime.StepScheduled, runtime.StepStarted, runtime.StepPulling:
		w.msg = ""
	}
}

func (w *schedulerWait) message() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.msg
}
