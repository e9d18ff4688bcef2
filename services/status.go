package services

import (
	"fmt"

	"aima/errs"
)

// Status is a service's lifecycle state. The values are part of the API.
type Status string

// The statuses. creating covers a whole start (see Phase); running means the
// engine's health endpoint answered 200; failed always carries a reason.
const (
	StatusCreated   Status = "created"
	StatusCreating  Status = "creating"
	StatusRunning   Status = "running"
	StatusUnhealthy Status = "unhealthy"
	StatusStopping  Status = "stopping"
	StatusStopped   Status = "stopped"
	StatusFailed    Status = "failed"
	// StatusSleeping: the engine runs but has freed its GPU memory (vLLM's
	// sleep mode); the next inference request wakes it in seconds.
	StatusSleeping Status = "sleeping"
)

// HoldsGPUs reports whether a service in this status holds its GPUs:
// running, unhealthy or creating (a swap-group member that is up, a
// service a GPU drain moves, an eviction candidate that is busy).
func (s Status) HoldsGPUs() bool {
	return s == StatusRunning || s == StatusUnhealthy || s == StatusCreating
}

// AllStatuses lists every status, in lifecycle order.
var AllStatuses = []Status{StatusCreated, StatusCreating, StatusRunning, StatusUnhealthy, StatusSleeping, StatusStopping, StatusStopped, StatusFailed}

// Phase is the step a start is in while the status is creating.
type Phase string

// The start phases, in order.
const (
	PhaseCleanup     Phase = "cleanup"      // removing stale containers of this service
	PhaseSchedule    Phase = "schedule"     // choosing GPUs and checking the model fits, before anything is pulled
	PhasePull        Phase = "pull"         // pulling the engine image (bytes per layer)
	PhaseCreate      Phase = "create"       // creating the container
	PhaseStart       Phase = "start"        // starting the container
	PhaseLoading     Phase = "loading"      // the engine loads the model (its own log lines)
	PhaseHealthCheck Phase = "health_check" // waiting for HTTP 200 on the health endpoint
)

// StartPhases lists the phases in the order a start goes through them.
var StartPhases = []Phase{PhaseCleanup, PhaseSchedule, PhasePull, PhaseCreate, PhaseStart, PhaseLoading, PhaseHealthCheck}

// transitions is the one table every status change is validated against.
// It holds exactly the edges the manager takes: the package's tests fail
// when an edge has no test that takes it (see TestMain).
var transitions = map[Status][]Status{
	StatusCreated:   {StatusCreating},
	StatusCreating:  {StatusRunning, StatusFailed, StatusStopping},
	StatusRunning:   {StatusUnhealthy, StatusFailed, StatusStopping, StatusSleeping},
	StatusUnhealthy: {StatusRunning, StatusFailed, StatusStopping},
	StatusStopping:  {StatusStopped, StatusFailed},
	StatusStopped:   {StatusCreating},
	StatusFailed:    {StatusCreating, StatusStopped},
	StatusSleeping:  {StatusRunning, StatusFailed, StatusStopping},
}

// CanTransition reports whether from → to is allowed.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// CheckTransition returns a Conflict error naming both states when from → to
// is not allowed.
func CheckTransition(from, to Status) error {
	if CanTransition(from, to) {
		return nil
	}
	return errs.New(errs.Conflict, "cannot go from %s to %s", from, to)
}

// Terminal reports whether no change happens without a new request or an
// outside event (a start in progress and a stop in progress are not terminal).
func (s Status) Terminal() bool {
	switch s {
	case StatusCreated, StatusRunning, StatusStopped, StatusFailed, StatusSleeping:
		return true
	}
	return false
}

// ParseStatus validates a status string from input.
func ParseStatus(field, s string) (Status, error) {
	for _, v := range AllStatuses {
		if string(v) == s {
			return v, nil
		}
	}
	return "", errs.Invalid(field, "unknown status %q (want one of %v)", s, fmt.Sprint(AllStatuses))
}
