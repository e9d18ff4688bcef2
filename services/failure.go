package services

import (
	"aima/errs"
)

// FailureKind says, as data, why a service failed. It is set on every
// failed record (and cleared when the service leaves failed), so clients
// and aima's own front-ends decide on it instead of parsing Reason, which
// stays the human sentence with the engine's own words.
type FailureKind string

// The failure kinds: a small closed set. Phase (for a start) and ExitCode
// and OOMKilled (for an exit) carry the details.
const (
	// FailureTimeout: the start's deadline passed; Phase says where.
	FailureTimeout FailureKind = "timeout"
	// FailureExited: the engine's process exited; ExitCode says how. An
	// engine that dies right after it was ready is this too (Phase empty).
	FailureExited FailureKind = "exited"
	// FailureOOM: the engine was killed for running out of memory
	// (OOMKilled is set; ExitCode too when it is known).
	FailureOOM FailureKind = "oom"
	// FailureWedged: the process runs but the health endpoint failed for
	// longer than unhealthy_grace; aima stopped the container.
	FailureWedged FailureKind = "wedged"
	// FailureDisappeared: the container was removed behind aima's back
	// (while running, or while the daemon was down).
	FailureDisappeared FailureKind = "disappeared"
	// FailureInterrupted: a daemon restart cut the start before its
	// container ran (not created yet, or created and never started).
	FailureInterrupted FailureKind = "interrupted"
	// FailurePortInUse: the service's host port is held by another
	// process, or the engine could not bind its own port in the container
	// (the reason has the engine's line).
	FailurePortInUse FailureKind = "port_in_use"
	// FailureImageUnavailable: the engine image is absent and could not be
	// pulled (unknown image or tag, registry unreachable or refusing).
	FailureImageUnavailable FailureKind = "image_unavailable"
	// FailureRuntimeError: the container runtime refused a step of the
	// start (remove, create, start); the reason has its message.
	FailureRuntimeError FailureKind = "runtime_error"
	// FailureRuntimeUnavailable: the container runtime (the Docker engine)
	// could not be reached.
	FailureRuntimeUnavailable FailureKind = "runtime_unavailable"
	// FailureStopFailed: a stop did not complete, or a delete that
	// cancelled a start could not remove its container; the container may
	// still run.
	FailureStopFailed FailureKind = "stop_failed"
	// FailureInternal: aima could not prepare or record the start (a store
	// error, engine settings it cannot apply).
	FailureInternal FailureKind = "internal"
	// FailureUnschedulable: the schedule phase refused the start, before
	// any pull or container: the GPUs it needs are held by other services,
	// too small for the model, or missing. The reason has both figures.
	// On Kubernetes it is also a start whose Pod no node could take before
	// the start's deadline; the reason has the scheduler's own message.
	FailureUnschedulable FailureKind = "unschedulable"
	// FailureGPUUnavailable: the GPU inventory could not be read (the
	// driver's nvidia-smi failed or hung).
	FailureGPUUnavailable FailureKind = "gpu_unavailable"
	// FailureEvicted: the cluster evicted the engine's Pod (its node under
	// memory or disk pressure, or the eviction API); the reason has the
	// cluster's message.
	FailureEvicted FailureKind = "evicted"
	// FailureNodeLost: the node the engine ran on went away or stopped
	// answering, and the cluster removed or failed its Pod.
	FailureNodeLost FailureKind = "node_lost"
)

// AllFailureKinds lists every failure kind.
var AllFailureKinds = []FailureKind{
	FailureTimeout, FailureExited, FailureOOM, FailureWedged, FailureDisappeared, FailureInterrupted,
	FailurePortInUse, FailureImageUnavailable, FailureRuntimeError, FailureRuntimeUnavailable,
	FailureStopFailed, FailureInternal, FailureUnschedulable, FailureGPUUnavailable, FailureEvicted, FailureNodeLost,
}

// runtimeFailure is the kind of a failed runtime call: unreachable, or
// refused.
func runtimeFailure(err error) FailureKind {
	if errs.Is(err, errs.Unavailable) {
		return FailureRuntimeUnavailable
	}
	return FailureRuntimeError
}

// exitKind is the kind of a container exit.
func exitKind(oom bool) FailureKind {
	if oom {
		return FailureOOM
	}
	return FailureExited
}
