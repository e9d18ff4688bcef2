package gpu

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"aima/errs"
)

// Lease is a service's hold on GPUs, from the start of a start until the
// service stops or fails. It is stored on the service record (the one
// source of truth), so it is persisted and restored with it.
type Lease struct {
	Devices []LeasedDevice `json:"devices" jsonschema:"the GPUs held"`
	// Node is the cluster node all the GPUs are on (runtime: kubernetes);
	// the service's Pod is pinned to it. Empty on one host.
	Node        string    `json:"node,omitempty" jsonschema:"the Kubernetes node the GPUs are on, where the service's Pod is pinned (absent on one host)"`
	Fraction    float64   `json:"fraction" jsonschema:"share of each GPU's memory the service declared (1 = the whole GPU)"`
	PerGPUBytes int64     `json:"per_gpu_bytes,omitempty" jsonschema:"estimated memory the service needs on each GPU"`
	Forced      bool      `json:"forced,omitempty" jsonschema:"placed with force: the fit check and the sharing rule were skipped"`
	At          time.Time `json:"at" jsonschema:"when the lease was taken"`
}

// LeasedDevice is one GPU of a lease.
type LeasedDevice struct {
	Index int    `json:"index"`
	UUID  string `json:"uuid"`
	Name  string `json:"name,omitempty"`
}

// UUIDs lists the lease's device UUIDs, in lease order.
func (l Lease) UUIDs() []string {
	out := make([]string, len(l.Devices))
	for i, d := range l.Devices {
		out[i] = d.UUID
	}
	return out
}

// SleepFrees reports whether its holder's sleep leaves the GPUs to
// others: on one host the sleeping engine frees their memory; on a
// cluster (a lease on a node) the sleeping Pod keeps its nvidia.com/gpu
// request, so only a stop frees them.
func (l Lease) SleepFrees() bool { return l.Node == "" }

// Indexes is "0,1".
func (l Lease) Indexes() string {
	var parts []string
	for _, d := range l.Devices {
		parts = append(parts, strconv.Itoa(d.Index))
	}
	return strings.Join(parts, ",")
}

// Text is the lease as messages name it: "GPU 0,1", on a cluster "GPU 0
// on node a".
func (l Lease) Text() string {
	if l.Node != "" {
		return fmt.Sprintf("GPU %s on node %s", l.Indexes(), l.Node)
	}
	return "GPU " + l.Indexes()
}

// Held is another service's lease, as placement sees it.
type Held struct {
	ServiceID string
	Name      string
	Lease     Lease
	// Dormant is set while the holder's engine has freed its GPU memory
	// (asleep): the lease keeps its devices for the wake but does not
	// count against other services.
	Dormant bool
}

// Refusal is a placement that cannot be made now. Its message carries both
// figures in GiB; Suggestion says what would make it fit.
type Refusal struct {
	// Held is set when a GPU the service needs is held by another service.
	Held bool
	// Live is set when the refusal rests on free memory as last read, so
	// a fresh read of the inventory could change it; a refusal for leases
	// or total capacity stands without one.
	Live bool
	// Cordoned is set when the GPU is cordoned (see Cordon).
	Cordoned bool
	// NodeSkipped is set when the GPU's node is not ready, cordoned or
	// tainted against aima's Pods. Like a cordon, force does not override
	// it.
	NodeSkipped bool
	NeedBytes   int64
	HaveBytes   int64
	Message     string
	Suggestion  string
	// SuggestedArgs are engine args that would make it fit, when known.
	SuggestedArgs []string
	// Nodes are each cluster node's figures when no node fits (nil on
	// one host).
	Nodes []NodeFit
}

// forceable reports a refusal that force overrides: the fit check and the
// sharing rule, never an operator's cordon or a node placement skips.
func (r *Refusal) forceable() bool { return !r.Cordoned && !r.NodeSkipped }

func (r *Refusal) Error() string {
	if r.Suggestion == "" {
		return r.Message
	}
	return r.Message + "; " + r.Suggestion
}

// refuse wraps a refusal as a Conflict error.
func refuse(r *Refusal) error { return &errs.Error{Kind: errs.Conflict, Err: r} }
