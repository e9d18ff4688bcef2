package runtime

import "context"

// GPUNode is one node of a cluster runtime with NVIDIA GPUs, as the
// cluster describes it: the figures NVIDIA's GPU Feature Discovery labels
// and the device plugin's allocatable count give, and how many GPUs the
// Pods bound to it request. Placement (package gpu) turns it into one
// device per allocatable GPU and picks the node a container is pinned to
// (ContainerSpec.Node).
type GPUNode struct {
	Name string
	// Hostname is the node's kubernetes.io/hostname label, which node
	// affinity matches; the node's name when it has none.
	Hostname string
	// Product is the GPU model (nvidia.com/gpu.product), e.g.
	// NVIDIA-H100-80GB-HBM3; empty when not labelled.
	Product string
	// MemoryMiB is each GPU's memory (nvidia.com/gpu.memory, MiB); 0 when
	// not labelled.
	MemoryMiB int64
	// LabelCount is nvidia.com/gpu.count (0 when not labelled): what the
	// node has, which may differ from what it offers (Allocatable).
	LabelCount int
	// Allocatable is the node's allocatable nvidia.com/gpu.
	Allocatable int
	// RequestedOwn is what the non-terminated Pods of this daemon's store
	// bound to the node request; RequestedOthers what every other
	// non-terminated Pod bound to it requests (other workloads, other
	// aima daemons). OtherPods names the latter (namespace/name, at most
	// MaxOtherPods of them).
	RequestedOwn    int
	RequestedOthers int
	OtherPods       []string
	// Ready is the node's Ready condition; NotReady says why not (the
	// condition's reason and message) when it is not.
	Ready    bool
	NotReady string
	// Unschedulable is set on a cordoned node (spec.unschedulable).
	Unschedulable bool
	// Untolerated names a NoSchedule or NoExecute taint of the node that
	// the runtime's Pods do not tolerate ("key=value:Effect"), empty when
	// they tolerate them all.
	Untolerated string
}

// MaxOtherPods bounds GPUNode.OtherPods.
const MaxOtherPods = 8

// GPUNodeLister is implemented by runtimes that run containers on a
// cluster of nodes: it lists the nodes their containers may be placed on
// (those matching the runtime's node selector) that offer GPUs. A caller
// that lacks the permission to read them gets an errs.PermissionDenied
// error.
type GPUNodeLister interface {
	GPUNodes(ctx context.Context) ([]GPUNode, error)
}
