// Package runtime is aima's view of a container engine: the few operations a
// service start, stop and watch need, with no Docker types leaking out. The
// Docker implementation lives in runtime/docker; unit tests use fakes.
package runtime

import (
	"context"
	"time"
)

// Labels aima stamps on every container it creates. Docker is the source of
// truth for what runs; these labels tie a container back to its service.
const (
	LabelManaged = "aima.managed" // "true"
	LabelService = "aima.service" // service ID
	LabelEngine  = "aima.engine"  // engine type, e.g. "vllm"
	LabelModel   = "aima.model"   // model ID or remote reference
	LabelPort    = "aima.port"    // host port
	// LabelStore is the identity of the state store holding the service's
	// record (state.StoreID): it tells this daemon's containers from those
	// of another data dir or of a store that was lost.
	LabelStore = "aima.store"
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
	// Attach is how the GPUs reach the container: GPUAttachDeviceRequests
	// (the default), GPUAttachCDI, or GPUAttachEnv. Runtimes without such
	// a choice ignore it.
	Attach string
}

// How a GPURequest reaches a container.
const (
	GPUAttachDeviceRequests = "device_requests" // the NVIDIA device request of docker run --gpus
	GPUAttachCDI            = "cdi"             // CDI device names nvidia.com/gpu=<uuid>
	GPUAttachEnv            = "env"             // NVIDIA_VISIBLE_DEVICES only (the nvidia runtime is the default)
)

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
}

// ContainerState is what the engine reports about one container.
type ContainerState struct {
	ID         string
	Name       string
	Image      string
	Labels     map[string]string
	Status     string // created, running, paused, restarting, removing, exited, dead
	Running    bool
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	HostPort   int // published host port of the spec's ContainerPort, 0 if none
	CreatedAt  time.Time
}

// PullProgress is one message of an image pull, per layer.
type PullProgress struct {
	Layer   string // layer ID, empty for whole-image status lines
	Status  string // "Downloading", "Extracting", "Pull complete", ...
	Current int64
	Total   int64
}

// ExitStatus is delivered once when a waited-for container stops.
type ExitStatus struct {
	ExitCode int
	Err      error // the wait itself failed (engine gone, ctx done)
}

// LogOptions select a slice of a container's output.
type LogOptions struct {
	Follow bool
	Tail   int       // last N lines; <0 means all
	Since  time.Time // zero = from the start
}

// LogLine is one line of container output. Text has no trailing newline.
type LogLine struct {
	Stream string // "stdout" or "stderr"
	Time   time.Time
	Text   string
}

// Event is a container lifecycle event from the engine.
type Event struct {
	ContainerID string
	Action      string // create, start, die, oom, kill, stop, destroy, health_status: ...
	ExitCode    int    // for die
	Labels      map[string]string
	Time        time.Time
}

// Runtime is the container engine. Errors carry errs kinds: a missing
// container or image is errs.NotFound; an unreachable engine is
// errs.Unavailable.
type Runtime interface {
	Ping(ctx context.Context) error
	ImageExists(ctx context.Context, ref string) (bool, error)
	// PullImage pulls ref, calling progress for every message; it returns
	// the pull's error (including errors reported inside the stream).
	PullImage(ctx context.Context, ref string, progress func(PullProgress)) error
	CreateContainer(ctx context.Context, spec ContainerSpec) (id string, err error)
	StartContainer(ctx context.Context, id string) error
	InspectContainer(ctx context.Context, id string) (ContainerState, error)
	// ListContainers returns containers in every state whose labels include
	// all of the given label pairs.
	ListContainers(ctx context.Context, labels map[string]string) ([]ContainerState, error)
	// StopContainer sends SIGTERM, then SIGKILL after timeout.
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	RemoveContainer(ctx context.Context, id string, force bool) error
	// WaitExit delivers the container's exit once it is not running.
	WaitExit(ctx context.Context, id string) <-chan ExitStatus
	// Logs streams demultiplexed output lines, in order, until the
	// container's output ends (or, with Follow, until ctx is done).
	Logs(ctx context.Context, id string, opts LogOptions) (<-chan LogLine, <-chan error)
	// Events streams container events for containers carrying the given
	// labels, starting at since (zero = now). The error channel gets one
	// value when the stream ends.
	Events(ctx context.Context, since time.Time, labels map[string]string) (<-chan Event, <-chan error)
}
