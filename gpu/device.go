// Package gpu is aima's knowledge of the host's GPUs: the inventory read
// from nvidia-smi (or, on Kubernetes, from the cluster's GPU nodes, see
// cluster.go), the memory a model needs (estimated from files aima can
// read without a GPU), and the placement policy that turns a service's GPU
// request into a lease on concrete devices, or a refusal with figures and a
// suggestion. It depends on no other aima domain package: the service
// lifecycle calls it and records its decisions.
package gpu

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"aima/internal/units"
)

// Device is one GPU as the driver reports it. Pointer fields are nil when
// the driver reports the value as not available ([N/A], [Not Supported]).
type Device struct {
	Index             int      `json:"index" jsonschema:"device index as nvidia-smi numbers it"`
	UUID              string   `json:"uuid" jsonschema:"stable device UUID (GPU-...)"`
	Name              string   `json:"name" jsonschema:"product name, e.g. NVIDIA H100 80GB HBM3"`
	MemoryTotalBytes  *int64   `json:"memory_total_bytes,omitempty" jsonschema:"total memory in bytes (absent when the driver does not report it)"`
	MemoryUsedBytes   *int64   `json:"memory_used_bytes,omitempty" jsonschema:"used memory in bytes"`
	MemoryFreeBytes   *int64   `json:"memory_free_bytes,omitempty" jsonschema:"free memory in bytes"`
	UtilizationPct    *int     `json:"utilization_percent,omitempty" jsonschema:"GPU utilization in percent"`
	TemperatureC      *int     `json:"temperature_c,omitempty" jsonschema:"temperature in degrees Celsius"`
	PowerW            *float64 `json:"power_w,omitempty" jsonschema:"power draw in watts"`
	DriverVersion     string   `json:"driver_version,omitempty" jsonschema:"NVIDIA driver version"`
	CUDAVersion       string   `json:"cuda_version,omitempty" jsonschema:"highest CUDA version the driver supports"`
	ComputeCapability string   `json:"compute_capability,omitempty" jsonschema:"CUDA compute capability, e.g. 9.0"`
	// MIGMode is enabled, disabled, or empty when the GPU has no MIG.
	MIGMode   string    `json:"mig_mode,omitempty" jsonschema:"enabled or disabled (absent on GPUs without MIG); aima does not choose MIG-enabled GPUs on its own"`
	Processes []Process `json:"processes,omitempty" jsonschema:"compute processes on the GPU (any owner)"`
	// InvalidFields names the figures nvidia-smi reported with a value
	// that cannot be (NaN, infinite, out of range); they are shown as
	// unknown.
	InvalidFields []string `json:"invalid_fields,omitempty" jsonschema:"figures the driver reported with an impossible value (not finite, out of range, used or free above total), e.g. power.draw=\"NaN\"; they are treated as not reported"`
	HeldBy        []Holder `json:"held_by,omitempty" jsonschema:"aima services holding a lease on this GPU"`
	Cordon        *Cordon  `json:"cordon,omitempty" jsonschema:"set while the GPU is cordoned: it takes no new lease (gpu_cordon, gpu_drain)"`
	// Node is the cluster node the GPU is on (runtime: kubernetes); empty
	// on one host. A cluster's GPUs are one per allocatable nvidia.com/gpu
	// of a node, with UUID "<node>/<index>": the node's device plugin, not
	// aima, picks the physical GPU.
	Node string `json:"node,omitempty" jsonschema:"the Kubernetes node the GPU is on (absent on one host); its uuid is node/index"`
	// RequestedBy says what, besides aima's leases, takes this GPU of the
	// node: other Pods' requests (see ClusterView).
	RequestedBy string `json:"requested_by,omitempty" jsonschema:"on a cluster: the Pods outside aima's leases that request this GPU of the node (the node's device plugin decides which physical GPU each gets)"`
}

// Process is a compute process on a GPU.
type Process struct {
	PID             int    `json:"pid"`
	Name            string `json:"name"`
	UsedMemoryBytes *int64 `json:"used_memory_bytes,omitempty"`
}

// Holder is an aima service holding a lease on a GPU.
type Holder struct {
	ServiceID string  `json:"service_id"`
	Name      string  `json:"name,omitempty"`
	Fraction  float64 `json:"fraction" jsonschema:"share of the GPU's memory the service declared (1 = the whole GPU)"`
	Sleeping  bool    `json:"sleeping,omitempty" jsonschema:"the service sleeps: its lease keeps the GPU for its wake but leaves it to others meanwhile"`
}

// Snapshot is the inventory at one moment.
type Snapshot struct {
	Devices []Device `json:"devices"`
	// Nodes are the cluster's GPU nodes (runtime: kubernetes), by name;
	// nil on one host. Devices then hold each node's GPUs, in node order.
	Nodes  []Node    `json:"nodes,omitempty"`
	ReadAt time.Time `json:"read_at"`
	// Note says why the list is empty on a host without NVIDIA GPUs.
	Note string `json:"note,omitempty"`
}

// Label names a device in messages: "GPU 1 (GPU-5f2a…)", or on a cluster
// "GPU 1 on node gpu-a".
func (d Device) Label() string {
	if d.Node != "" {
		return fmt.Sprintf("GPU %d on node %s", d.Index, d.Node)
	}
	return fmt.Sprintf("GPU %d (%s)", d.Index, shortUUID(d.UUID))
}

func shortUUID(u string) string {
	if len(u) > 12 {
		return u[:12] + "…"
	}
	return u
}

// Total is the device's memory in bytes, 0 when unknown.
func (d Device) Total() int64 { return deref(d.MemoryTotalBytes) }

// MemoryKnown reports whether the driver reports total and free memory,
// the two figures placement needs. Used memory may still be unknown: read
// it with BytesText or check MemoryUsedBytes.
func (d Device) MemoryKnown() bool { return d.MemoryTotalBytes != nil && d.MemoryFreeBytes != nil }

// BytesText is a memory figure in GiB ("71.3 GiB"), or "n/a" when the
// driver does not report it: each figure of a Device is checked on its
// own, whatever MemoryKnown says.
func BytesText(p *int64) string {
	if p == nil {
		return "n/a"
	}
	return units.GiB(*p)
}

// MIG reports whether MIG is enabled (aima leaves such GPUs to explicit
// device= requests: it does not partition them).
func (d Device) MIG() bool { return d.MIGMode == "enabled" }

// MemoryText is "12.3/80.0 GiB free" or "memory not reported".
func (d Device) MemoryText() string {
	if !d.MemoryKnown() {
		return "memory not reported"
	}
	return fmt.Sprintf("%s/%s free", strings.TrimSuffix(units.GiB(*d.MemoryFreeBytes), " GiB"), units.GiB(*d.MemoryTotalBytes))
}

// Find returns the device named by an index ("1") or a UUID ("GPU-…",
// in any letter case). A cluster's GPUs are found by their UUID
// (node/index) only: an index names a GPU of every node.
func (s Snapshot) Find(id string) (Device, bool) {
	for _, d := range s.Devices {
		if strings.EqualFold(d.UUID, id) || (d.Node == "" && strconv.Itoa(d.Index) == id) {
			return d, true
		}
	}
	return Device{}, false
}

// Named resolves what gpu_cordon, gpu_uncordon and gpu_drain name: on
// one host an index or a UUID, one GPU; on a cluster a GPU's UUID
// (node/index), or a node's name, every GPU of the node (node is then
// set). Nothing is found when devs is empty.
func (s Snapshot) Named(id string) (devs []Device, node string) {
	if d, ok := s.Find(id); ok {
		return []Device{d}, ""
	}
	if !s.Cluster() || id == "" {
		return nil, ""
	}
	for _, d := range s.Devices {
		if d.Node == id {
			devs = append(devs, d)
		}
	}
	if len(devs) > 0 {
		node = id
	}
	return devs, node
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }
