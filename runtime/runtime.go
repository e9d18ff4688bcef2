// Package runtime is aima's view of a container engine: the few operations a
// service start, stop and watch need, with no engine types leaking out. The
// Docker implementation lives in runtime/docker; runtime/fakeruntime is a
// scripted in-memory one for unit tests; runtime/kubernetes runs each
// container as a Pod on a cluster.
//
// The interface follows docker/compose's service API: an identifier plus an
// options struct per call, so a new option is a new field rather than a new
// signature in every implementation. Nothing in it is Docker-only: states and
// event actions are aima's vocabulary (State*, Action*), which the Docker
// implementation passes through and another runtime (e.g. Kubernetes pods:
// Pending→created, Running→running, Succeeded/Failed→exited, an OOMKilled
// termination→ActionOOM then ActionDie) maps onto.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Labels aima stamps on every container it creates. The runtime is the
// source of truth for what runs; these labels tie a container back to its
// service and its run.
const (
	LabelManaged = "aima.managed" // "true"
	LabelService = "aima.service" // service ID
	LabelRun     = "aima.run"     // the service's run number (1, 2, ...): the newest container has the highest
	LabelEngine  = "aima.engine"  // engine type, e.g. "vllm"
	LabelModel   = "aima.model"   // model ID or remote reference
	LabelPort    = "aima.port"    // host port
	// LabelStore is the identity of the state store holding the service's
	// record (state.StoreID): it tells this daemon's containers from those
	// of another data dir or of a store that was lost.
	LabelStore = "aima.store"
)

// Container states (ContainerState.Status).
const (
	StateCreated    = "created"    // created, never started
	StateRunning    = "running"    // the process runs
	StatePaused     = "paused"     // frozen
	StateRestarting = "restarting" // the engine restarts it (aima never asks for that)
	StateRemoving   = "removing"   // being removed
	StateExited     = "exited"     // the process ended; ExitCode says how
	StateDead       = "dead"       // the engine failed to remove it
)

// Event actions aima reacts to (Event.Action). A runtime may deliver others
// (Docker's kill, stop, health_status: ...); aima ignores them.
const (
	ActionCreate  = "create"  // the container exists
	ActionStart   = "start"   // its process started
	ActionOOM     = "oom"     // the kernel killed a process in it for memory (before its die)
	ActionDie     = "die"     // its process ended; Event.ExitCode is set
	ActionDestroy = "destroy" // the container was removed
	// ActionProgress is a step of a start that a runtime with its own
	// scheduler and image puller reports (Kubernetes: the scheduler's and
	// the kubelet's events). Event.Step says which, Event.Message carries
	// the cluster's own words. Docker reports none.
	ActionProgress = "progress"
)

// ErrImagePull is in the chain of a StartContainer error when the node
// that was to run the container cannot get its image (a runtime that
// pulls at start, as Kubernetes' kubelet does).
var ErrImagePull = errors.New("image pull failed")

// StepReporter is implemented by runtimes that report ActionProgress
// steps while StartContainer runs, so a caller subscribes only where
// there is something to follow.
type StepReporter interface {
	ReportsSteps() bool
}

// Step is what an ActionProgress event reports.
type Step string

// Steps of a start on a runtime that schedules and pulls by itself.
const (
	StepScheduled     Step = "scheduled"     // placed on a node (Message names it)
	StepUnschedulable Step = "unschedulable" // no node fits yet; Message is the scheduler's, e.g. "0/3 nodes are available: ..."
	StepPulling       Step = "pulling"       // the node pulls the image
	StepPulled        Step = "pulled"        // the image is on the node
	StepPullFailed    Step = "pull_failed"   // the node cannot get the image (ErrImagePull, ImagePullBackOff, InvalidImageName)
	StepCreated       Step = "created"       // the container was created on the node
	StepStarted       Step = "started"       // its process started
)

// Reason says why a container ended when the runtime knows more than an
// exit code (ContainerState.Reason, ExitStatus.Reason, Event.Reason).
// Docker leaves it empty (its OOMKilled flag says the one thing it knows).
type Reason string

// Why a container ended.
const (
	ReasonOOMKilled Reason = "oom_killed" // the kernel killed it for memory
	ReasonEvicted   Reason = "evicted"    // the node evicted it (memory or disk pressure)
	ReasonDeleted   Reason = "deleted"    // removed by someone else than aima
	ReasonNodeLost  Reason = "node_lost"  // its node went away or stopped answering
	ReasonPullError Reason = "pull_error" // its image could not be pulled (it never ran)
)

// Mount is a bind mount from the host into the container.
type Mount struct {
	Source   string
	Target   string
	ReadOnly bool
}

// GPURequest says which GPUs a container gets. The zero value means none.
// It names GPUs, not a mechanism: the Docker runtime turns it into device
// requests (or only environment, per Attach); a Kubernetes runtime would
// turn the device count into a resource request.
type GPURequest struct {
	All       bool
	Count     int      // N GPUs picked by the runtime (used only without an inventory)
	DeviceIDs []string // GPU UUIDs (or indexes)
	// Attach is how the GPUs reach the container (the config's
	// gpu_attach). Runtimes without such a choice ignore it.
	Attach GPUAttach
}

// GPUAttach is how a GPURequest reaches a container: the one type of the
// config's gpu_attach, the service manager's option and the Docker
// runtime's choice.
type GPUAttach string

// The ways GPUs reach a container.
const (
	GPUAttachDeviceRequests GPUAttach = "device_requests" // the NVIDIA device request of docker run --gpus
	GPUAttachCDI            GPUAttach = "cdi"             // CDI device names nvidia.com/gpu=<uuid>
	GPUAttachEnv            GPUAttach = "env"             // NVIDIA_VISIBLE_DEVICES only (the nvidia runtime is the default)
)

// ParseGPUAttach validates an attach mode ("" means device_requests).
func ParseGPUAttach(s string) (GPUAttach, error) {
	switch a := GPUAttach(s); a {
	case "", GPUAttachDeviceRequests:
		return GPUAttachDeviceRequests, nil
	case GPUAttachCDI, GPUAttachEnv:
		return a, nil
	}
	return "", fmt.Errorf("gpu_attach %q: want device_requests, cdi or env", s)
}

// ContainerSpec is everything needed to create an engine container.
type ContainerSpec struct {
	Name          string
	Image         string
	Args          []string // appended to the image's entrypoint
	Env           []string // KEY=VALUE
	Labels        map[string]string
	ContainerPort int    // e.g. 8000
	HostIP        string // default 127.0.0.1
	HostPort      int    // 0 = ephemeral
	Mounts        []Mount
	GPUs          GPURequest
	ShmSize       int64 // bytes; 0 = engine default
	// Node is the node the container must run on, chosen by placement
	// among a cluster runtime's GPUNodes (its GPUs are there); empty: the
	// runtime decides. A single-host runtime (Docker) has one node and
	// ignores it.
	Node        string
	MemoryLimit int64 // bytes of host memory; 0 = no limit (above it the kernel OOM-kills)
	// StopTimeout is the grace a stop gives the engine between SIGTERM and
	// SIGKILL, when a runtime must fix it at creation (a Pod's
	// terminationGracePeriodSeconds: the kubelet uses it when a stop ends
	// the Pod and keeps it). Docker takes StopOptions.Timeout per stop.
	StopTimeout time.Duration
}

// ContainerState is what the engine reports about one container.
type ContainerState struct {
	ID         string
	Name       string
	Image      string
	Labels     map[string]string
	Status     string // one of the State* constants
	Running    bool
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	HostPort   int // published host port of the spec's ContainerPort, 0 if none
	// Reason and Message say why it ended or cannot run, when the runtime
	// knows (Message is the runtime's own words, e.g. the kubelet's).
	Reason  Reason
	Message string
	// LastOutput is the last lines the container wrote before it ended,
	// when the runtime hands them over with the end itself (the kubelet's
	// termination message, see runtime/kubernetes): at most a few KiB,
	// the first line possibly cut. Nil when the runtime does not (Docker):
	// then the logs say.
	LastOutput []string
	// CreatedAt may be coarse (Docker's list API has one-second precision):
	// order a service's containers by LabelRun, not by this.
	CreatedAt time.Time
}

// PullProgress is one message of an image pull, per layer.
type PullProgress struct {
	Layer   string // layer ID, empty for whole-image status lines
	Status  string // "Downloading", "Extracting", "Pull complete", ...
	Current int64
	Total   int64
}

// PullOptions configure PullImage.
type PullOptions struct {
	// Progress, if set, is called for every message of the pull, in order.
	Progress func(PullProgress)
}

// ListOptions select containers.
type ListOptions struct {
	// Labels: only containers carrying all of these label pairs.
	Labels map[string]string
}

// StopOptions configure StopContainer.
type StopOptions struct {
	// Timeout is the grace between SIGTERM and SIGKILL.
	Timeout time.Duration
}

// RemoveOptions configure RemoveContainer.
type RemoveOptions struct {
	// Force kills a running container first instead of refusing.
	Force bool
}

// ExitStatus is delivered once when a waited-for container stops.
type ExitStatus struct {
	ExitCode int
	Err      error // the wait itself failed (engine gone, ctx done)
	// Reason and Message: why it ended, when the runtime knows more than
	// the exit code (see ContainerState).
	Reason  Reason
	Message string
}

// LogOptions select a slice of a container's output.
type LogOptions struct {
	Follow bool
	Tail   int       // last N lines; <0 means all
	Since  time.Time // zero = from the start
	// NoTimes: the caller needs no LogLine.Time, and a runtime may leave it
	// zero (Docker then saves formatting a timestamp per line).
	NoTimes bool
	// OnWait, if set, is called when every line read so far has been
	// delivered and the stream is about to wait for more output: a caller
	// that buffers what it makes of the lines flushes then, so a quiet log
	// is seen at once and a flood is passed on in large writes.
	OnWait func()
}

// LogLine is one line of container output. Text has no trailing newline.
type LogLine struct {
	Stream string // "stdout" or "stderr"
	Time   time.Time
	Text   string
}

// EventOptions select container events.
type EventOptions struct {
	// Since replays events from this time (zero = only new events).
	Since time.Time
	// Labels: only events of containers carrying all of these label pairs.
	Labels map[string]string
}

// Event is a container lifecycle event from the engine.
type Event struct {
	ContainerID string
	Action      string // one of the Action* constants, or another the runtime reports
	ExitCode    int    // for ActionDie
	Labels      map[string]string
	Time        time.Time
	// Step and Message describe an ActionProgress event; Reason (with
	// Message) an ActionDie or ActionDestroy the runtime can explain.
	Step    Step
	Reason  Reason
	Message string
}

// Runtime is the container engine. Errors carry errs kinds: a missing
// container or image is errs.NotFound; an unreachable engine is
// errs.Unavailable; a name or host port already taken is errs.Conflict.
type Runtime interface {
	Ping(ctx context.Context) error
	ImageExists(ctx context.Context, ref string) (bool, error)
	// PullImage pulls ref; it returns the pull's error (including errors
	// reported inside the stream).
	PullImage(ctx context.Context, ref string, opts PullOptions) error
	CreateContainer(ctx context.Context, spec ContainerSpec) (id string, err error)
	StartContainer(ctx context.Context, id string) error
	InspectContainer(ctx context.Context, id string) (ContainerState, error)
	// ListContainers returns containers in every state.
	ListContainers(ctx context.Context, opts ListOptions) ([]ContainerState, error)
	// StopContainer sends SIGTERM, then SIGKILL after the timeout. Stopping
	// a stopped container is not an error.
	StopContainer(ctx context.Context, id string, opts StopOptions) error
	// RemoveContainer removes the container. A removal already in progress
	// (an earlier call's, perhaps one its caller gave up on while the
	// engine carried on) is waited for: the call returns nil once the
	// container is gone.
	RemoveContainer(ctx context.Context, id string, opts RemoveOptions) error
	// WaitExit delivers the container's exit once it is not running (at
	// once, code 0, for a container that was never started).
	WaitExit(ctx context.Context, id string) <-chan ExitStatus
	// Logs hands the container's output to each, one line at a time,
	// stdout and stderr interleaved in order, in the caller's goroutine,
	// until the output ends (or, with Follow, until the container stops or
	// ctx is done). It returns nil at a clean end, ctx's error when ctx
	// ended it, errs.Unavailable when the engine went away mid-stream, or
	// each's error, which ends the stream. Lines are never dropped: a slow
	// each slows the stream.
	Logs(ctx context.Context, id string, opts LogOptions, each func(LogLine) error) error
	// Events streams container events. The error channel gets exactly one
	// value when the stream ends (ctx's error, or errs.Unavailable when the
	// engine went away: resubscribe with Since = the last event's time),
	// then both channels are closed.
	Events(ctx context.Context, opts EventOptions) (<-chan Event, <-chan error)
}

// ClusterReport is what a runtime that runs engines on a cluster reports
// to `aima doctor` besides Ping: where the cluster is, whether it answers,
// its version, the namespace, and the permissions aima needs but lacks.
type ClusterReport struct {
	Runtime   string   `json:"runtime" jsonschema:"the runtime, e.g. kubernetes"`
	Server    string   `json:"server" jsonschema:"the API server's URL"`
	Reachable bool     `json:"reachable" jsonschema:"the API server answered"`
	Version   string   `json:"version,omitempty" jsonschema:"the API server's version"`
	Namespace string   `json:"namespace" jsonschema:"the namespace engine Pods run in"`
	Endpoint  string   `json:"endpoint" jsonschema:"how aima reaches engines: pod_ip or proxy (the API server's Pod proxy)"`
	Missing   []string `json:"missing" jsonschema:"permissions aima needs and lacks, as 'verb resource': in the namespace, and cluster-wide for GPU placement ('list nodes', 'watch pods (all namespaces)')"`
	Error     string   `json:"error,omitempty" jsonschema:"why the cluster could not be checked"`
}

// Diagnoser is implemented by runtimes with more to report than Ping.
type Diagnoser interface {
	Diagnose(ctx context.Context) ClusterReport
}
