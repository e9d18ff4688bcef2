// Package services is aima's service lifecycle: creating services, running
// their starts in the background (cleanup, schedule, pull, create, start, loading,
// health check), stopping and deleting them, and keeping one persisted record
// per service that status, list and --wait all read. It depends on the
// runtime, the state store and the event bus, never on a transport.
package services

import (
	"time"

	"aima/gpu"
)

// Service is the persisted record of one service.
type Service struct {
	ID          string      `json:"id" jsonschema:"service ID"`
	Name        string      `json:"name" jsonschema:"service name (unique)"`
	ModelID     string      `json:"model_id" jsonschema:"registered model ID, or the remote model reference given at create"`
	ModelRef    string      `json:"model_ref" jsonschema:"what the engine is told to load: a path inside the container or a remote reference"`
	ModelPath   string      `json:"model_path,omitempty" jsonschema:"host path of a registered model, mounted read-only"`
	EngineType  string      `json:"engine_type" jsonschema:"engine type, e.g. vllm"`
	Image       string      `json:"image" jsonschema:"engine image used by the last start"`
	Port        int         `json:"port" jsonschema:"host port the engine is published on: the one asked for at create, else handed out from port_range at the first start and kept for later starts (0 until then)"`
	Endpoint    string      `json:"endpoint" jsonschema:"base URL of the engine's API (empty until the service has a port)"`
	GPUs        string      `json:"gpus" jsonschema:"the GPU request: auto (the tensor-parallel size, 1 by default), all, none, N, or device=ID[,ID...]"`
	Args        []string    `json:"args,omitempty" jsonschema:"extra engine arguments"`
	Env         []string    `json:"env,omitempty" jsonschema:"extra environment, KEY=VALUE"`
	Status      Status      `json:"status" jsonschema:"created, creating, running, unhealthy, sleeping, stopping, stopped or failed"`
	Phase       Phase       `json:"phase,omitempty" jsonschema:"start phase while creating (or the phase a failed start died in)"`
	Reason      string      `json:"reason,omitempty" jsonschema:"why the service is in its status (always set when failed)"`
	Failure     FailureKind `json:"failure,omitempty" jsonschema:"set exactly when the status is failed, the kind of failure: timeout (the start's deadline passed; phase says where), exited (the engine process exited; exit_code), oom (killed for memory), wedged (process alive, health failing past unhealthy_grace), disappeared (container removed outside aima), interrupted (a daemon restart cut the start before its container ran), port_in_use, image_unavailable (could not be pulled), runtime_error (the container runtime refused a step), runtime_unavailable (the container runtime was unreachable), stop_failed, internal, unschedulable (the schedule phase refused the start before any pull or container: GPUs held by other services, too small, or missing; on Kubernetes also no node took the Pod before the start's deadline), gpu_unavailable (the GPU inventory could not be read), evicted (the cluster evicted the engine's Pod), node_lost (the engine's node went away)"`
	ExitCode    *int        `json:"exit_code,omitempty" jsonschema:"container exit code of the last run, when it exited"`
	OOMKilled   bool        `json:"oom_killed,omitempty" jsonschema:"the container was killed for running out of memory"`
	LogTail     []string    `json:"log_tail,omitempty" jsonschema:"last log lines of a failed run"`
	EngineError string      `json:"engine_error,omitempty" jsonschema:"the engine's own error line from its log (e.g. an exception line), when a failed run printed one; also quoted in reason"`
	ContainerID string      `json:"container_id,omitempty" jsonschema:"Docker container ID of the current or last run"`
	Run         int         `json:"run" jsonschema:"number of starts so far; the container of each run carries it as the aima.run label"`
	Warnings    []string    `json:"warnings,omitempty" jsonschema:"things the operator should know, e.g. a remote model reference"`

	RestartPolicy  string     `json:"restart_policy" jsonschema:"no, or on-failure (restart with exponential back-off: 10s doubling to 5m, reset after 10m of running)"`
	RestartCount   int        `json:"restart_count" jsonschema:"automatic restarts so far"`
	NextRestartAt  *time.Time `json:"next_restart_at,omitempty" jsonschema:"when the restart policy starts the service again"`
	BackoffStep    int        `json:"backoff_step,omitempty" jsonschema:"restarts in the current crash streak (the back-off doubles per step; a 10-minute run resets it)"`
	PreviousExit   string     `json:"previous_exit,omitempty" jsonschema:"how the previous run ended"`
	PreviousLogs   []string   `json:"previous_logs,omitempty" jsonschema:"last log lines of the previous run (service_logs previous=true)"`
	UnhealthySince *time.Time `json:"unhealthy_since,omitempty" jsonschema:"when the liveness probe started failing"`
	// Serving through the gateway (package serving: admission, swaps, idle release).
	ServedModel string   `json:"served_model,omitempty" jsonschema:"the model name the engine serves (what inference requests are rewritten to)"`
	Aliases     []string `json:"aliases,omitempty" jsonschema:"more model names inference requests may use for this service"`
	OnDemand    bool     `json:"on_demand,omitempty" jsonschema:"the first inference request for its model starts (or wakes) the service"`
	IdleTimeout string   `json:"idle_timeout,omitempty" jsonschema:"released (put to sleep, or stopped) after this long with no request in flight, e.g. 10m0s"`
	SwapGroup   string   `json:"swap_group,omitempty" jsonschema:"services of one swap group never run at the same time"`
	SleepMode   bool     `json:"sleep_mode,omitempty" jsonschema:"the engine runs with its sleep mode, so a release puts it to sleep instead of stopping it"`
	// Evictable services may be released to make room (evict.go).
	Evictable    bool      `json:"evictable,omitempty" jsonschema:"a start or wake that does not fit may put this service to sleep (or stop it) while it is idle, least recently used first"`
	LastEviction *Eviction `json:"last_eviction,omitempty" jsonschema:"the last time it was evicted to make room: by which service, from which GPUs"`
	// OnOOM retune retries a start that ran out of memory (retune.go).
	OnOOM   string   `json:"on_oom,omitempty" jsonschema:"retune: a start that runs out of memory for a cause the engine names with its figures is tried again, at most twice, with adjusted args (empty: it fails)"`
	Retunes []Retune `json:"retunes,omitempty" jsonschema:"every adjustment a retune made: the flag, its value before and after, and why"`

	// Traffic is filled on reads from the daemon's in-memory figures.
	Traffic *Traffic `json:"traffic,omitempty" jsonschema:"inference requests through the gateway since the daemon started"`

	// Stale is set on reads while the Docker engine is unreachable: the
	// status is the last one known.
	Stale bool `json:"stale,omitempty" jsonschema:"true while the Docker engine is unreachable: the status is the last known"`

	// GPULease is set while the service holds GPUs: from its schedule
	// phase until it stops or fails. The record is the one place leases
	// are kept.
	GPULease *gpu.Lease `json:"gpu_lease,omitempty" jsonschema:"the GPUs the service holds, from its schedule phase until it stops or fails"`

	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	StartedAt  *time.Time `json:"started_at,omitempty" jsonschema:"when the last start began"`
	ReadyAt    *time.Time `json:"ready_at,omitempty" jsonschema:"when the last start reached running"`
	DeadlineAt *time.Time `json:"deadline_at,omitempty" jsonschema:"when the start in progress times out"`
}
