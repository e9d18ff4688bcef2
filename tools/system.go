package tools

import (
	"context"
	"fmt"
	"strings"

	"aima/runtime"
	"aima/services"
	"aima/state"
)

// DoctorOutput is a health report of the daemon's world.
type DoctorOutput struct {
	Docker   string            `json:"docker" jsonschema:"ok, or why the runtime is unreachable: the Docker engine, or the Kubernetes API server with runtime kubernetes (named docker for compatibility)"`
	Services int               `json:"services" jsonschema:"number of service records"`
	Failed   []string          `json:"failed" jsonschema:"services in status failed, with their reasons"`
	Stranded []string          `json:"stranded" jsonschema:"services creating or stopping with no start or stop in progress, which would never settle (never expected; service_stop settles them)"`
	Stuck    []services.Stuck  `json:"stuck" jsonschema:"services that cannot make progress: creating or stopping past the time that status must end by while an operation still holds them (something in aima is blocked); a daemon restart clears them"`
	Orphans  []services.Orphan `json:"orphans" jsonschema:"containers labelled as aima's with no service record; remove with service_prune"`
	Store    state.Info        `json:"store" jsonschema:"the state store: its file, and its backup copy"`
	Damaged  []state.Damaged   `json:"damaged" jsonschema:"service and model records the state store cannot read: left out of lists, reconcile and liveness; delete them with service_delete or model_remove"`
	Warnings []string          `json:"warnings" jsonschema:"what needs attention, with what to do: damaged records, containers of another (possibly lost) state store, a failed backup, a port_range among the kernel's ephemeral ports"`
	GPU      string            `json:"gpu" jsonschema:"GPU state: the number of GPUs and the driver, why there are none, or why the driver cannot be read"`
	GPUs     []string          `json:"gpus" jsonschema:"one line per GPU: memory and the services holding it"`
	// Cluster is set when engines run on a cluster (runtime: kubernetes).
	Cluster *runtime.ClusterReport `json:"cluster,omitempty" jsonschema:"the cluster engines run on (runtime kubernetes): API server reachable, version, namespace, permissions missing"`
}

// PruneInput asks to remove orphan containers.
type PruneInput struct {
	Force bool `json:"force,omitempty" jsonschema:"also remove orphans created by another state store (other_store: another daemon's data dir, or a store that was lost); without it they are kept, so a lost store's engines are never removed silently"`
}

// PruneOutput lists the containers removed and those kept.
type PruneOutput struct {
	Items []services.Orphan `json:"items" jsonschema:"the orphan containers removed"`
	Total int               `json:"total" jsonschema:"number removed"`
	Kept  []services.Orphan `json:"kept" jsonschema:"orphans of another state store, kept because force was not set"`
}

// SystemInfo describes the daemon: what it is and the closed sets of
// values its records use, so clients (the web dashboard among them) take
// statuses, phases and failure kinds from the daemon, not from a copy.
type SystemInfo struct {
	Version      string                 `json:"version" jsonschema:"aima version"`
	ReadOnly     bool                   `json:"read_only" jsonschema:"the daemon serves only read-only operations"`
	DataDir      string                 `json:"data_dir" jsonschema:"the daemon's state directory"`
	Statuses     []services.Status      `json:"statuses" jsonschema:"every service status, in lifecycle order"`
	Phases       []services.Phase       `json:"phases" jsonschema:"the phases of a start, in the order a start goes through them"`
	FailureKinds []services.FailureKind `json:"failure_kinds" jsonschema:"every value of a failed service's failure field"`
	Operations   []OperationInfo        `json:"operations" jsonschema:"the operations this daemon serves, by name (read-only mode leaves out the ones that change state)"`
}

// OperationInfo is one operation the daemon serves.
type OperationInfo struct {
	Name        string `json:"name" jsonschema:"operation name, e.g. service_start (HTTP: /api/service/start)"`
	ReadOnly    bool   `json:"read_only,omitempty" jsonschema:"changes nothing"`
	Destructive bool   `json:"destructive,omitempty" jsonschema:"may delete or remove something"`
	LongRunning bool   `json:"long_running,omitempty" jsonschema:"may block for minutes (with wait)"`
}

func systemInfoOp() Op {
	return Declare(Spec[Empty, SystemInfo]{
		Name:        "system_info",
		Description: "Describe the daemon: version, read-only mode, data dir, the service statuses, start phases and failure kinds its records use (in order), and the operations it serves. Cheap; changes nothing.",
		Annotations: Annotations{ReadOnly: true, Idempotent: true},
		Run: func(_ context.Context, dom *Domain, _ Empty, _ Reporter) (SystemInfo, error) {
			out := SystemInfo{Version: dom.Version, ReadOnly: dom.ReadOnly, DataDir: dom.DataDir,
				Statuses: services.AllStatuses, Phases: services.StartPhases, FailureKinds: services.AllFailureKinds}
			for _, op := range Visible(dom.ReadOnly) {
				a := op.Annotations()
				out.Operations = append(out.Operations, OperationInfo{Name: op.Name(), ReadOnly: a.ReadOnly, Destructive: a.Destructive, LongRunning: a.LongRunning})
			}
			return out, nil
		},
		Render: func(o SystemInfo) string {
			mode := "read-write"
			if o.ReadOnly {
				mode = "read-only"
			}
			names := make([]string, len(o.Operations))
			for i, op := range o.Operations {
				names[i] = op.Name
			}
			return fmt.Sprintf("aima %s (%s), data dir %s\nstatuses: %v\nphases: %v\nfailure kinds: %v\noperations: %s",
				o.Version, mode, o.DataDir, o.Statuses, o.Phases, o.FailureKinds, strings.Join(names, ", "))
		},
	})
}

func systemOps() []Op {
	return []Op{
		systemInfoOp(),
		Declare(Spec[Empty, DoctorOutput]{
			Name:        "system_doctor",
			Description: "Diagnose aima's host: Docker engine reachability, the GPU state (driver, memory, leases), failed services and their reasons, services stranded in creating or stopping, services stuck (creating or stopping past their deadline while an operation still holds them), orphan containers (labelled as aima's but with no service record, e.g. after a lost data dir), the state store and its backup, records the store cannot read, and warnings with what to do. Changes nothing; service_prune removes orphans. When the daemon does not start because its store is damaged, `aima store check` inspects the store file without a daemon.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Run: func(ctx context.Context, dom *Domain, _ Empty, _ Reporter) (DoctorOutput, error) {
				out := DoctorOutput{Docker: "ok", Failed: []string{}, Stranded: []string{}, Stuck: []services.Stuck{}, Orphans: []services.Orphan{}, GPUs: []string{}}
				out.GPU, out.GPUs = gpuDoctor(ctx, dom)
				if err := dom.Runtime.Ping(ctx); err != nil {
					out.Docker = err.Error()
				}
				if d, ok := dom.Runtime.(runtime.Diagnoser); ok {
					r := d.Diagnose(ctx)
					out.Cluster = &r
				}
				all, err := dom.Services.List(ctx, "")
				if err != nil {
					return out, err
				}
				out.Services = len(all)
				for _, s := range all {
					if s.Status == services.StatusFailed {
						out.Failed = append(out.Failed, s.ID+": "+s.Reason)
					}
				}
				stranded, err := dom.Services.Stranded(ctx)
				if err != nil {
					return out, err
				}
				for _, s := range stranded {
					out.Stranded = append(out.Stranded, fmt.Sprintf("%s: %s (phase %s) with no start or stop in progress", s.ID, s.Status, s.Phase))
				}
				stuck, err := dom.Services.Stuck(ctx)
				if err != nil {
					return out, err
				}
				out.Stuck = append(out.Stuck, stuck...)
				var orphans []services.Orphan
				if out.Docker == "ok" {
					if orphans, err = dom.Services.Orphans(ctx); err != nil {
						return out, err
					}
					out.Orphans = orphans
				}
				h, err := dom.Services.StoreHealth(ctx, orphans)
				out.Store, out.Damaged, out.Warnings = h.Info, h.Damaged, h.Warnings
				if w := dom.Services.PortRangeWarning(); w != "" {
					out.Warnings = append(out.Warnings, w)
				}
				return out, err
			},
			Render: func(o DoctorOutput) string {
				var b strings.Builder
				if c := o.Cluster; c != nil {
					fmt.Fprintf(&b, "%s: %s", c.Runtime, o.Docker)
					if c.Reachable {
						fmt.Fprintf(&b, " (%s %s, namespace %s, engines reached by %s)", c.Server, c.Version, c.Namespace, c.Endpoint)
					}
					b.WriteString("\n")
					if c.Error != "" {
						fmt.Fprintf(&b, "  cannot check the cluster: %s\n", c.Error)
					}
					if len(c.Missing) > 0 {
						fmt.Fprintf(&b, "  permissions missing in namespace %s: %s\n", c.Namespace, strings.Join(c.Missing, ", "))
					}
				} else {
					fmt.Fprintf(&b, "docker: %s\n", o.Docker)
				}
				fmt.Fprintf(&b, "gpu: %s\n", o.GPU)
				for _, g := range o.GPUs {
					fmt.Fprintf(&b, "  %s\n", g)
				}
				fmt.Fprintf(&b, "services: %d\n", o.Services)
				store := o.Store.Backend
				if o.Store.Path != "" {
					store += " " + o.Store.Path
				}
				if o.Store.BackupAt != nil {
					store += fmt.Sprintf(" (backup %s, %s)", o.Store.Backup, o.Store.BackupAt.Local().Format("2006-01-02 15:04:05"))
				}
				fmt.Fprintf(&b, "store: %s\n", store)
				for _, f := range o.Failed {
					fmt.Fprintf(&b, "failed: %s\n", f)
				}
				for _, f := range o.Stranded {
					fmt.Fprintf(&b, "stranded: %s; `aima service stop` settles it\n", f)
				}
				for _, s := range o.Stuck {
					held := "its start still runs"
					if s.LockHeld {
						held = "an operation on it has not returned"
					}
					fmt.Fprintf(&b, "stuck: %s %s since %s, past %s, and %s; restart the daemon to clear it\n",
						s.ServiceID, s.Status, s.Since.Local().Format("2006-01-02 15:04:05"), s.Deadline.Local().Format("15:04:05"), held)
				}
				if len(o.Orphans) == 0 {
					b.WriteString("orphan containers: none\n")
				}
				for _, c := range o.Orphans {
					fmt.Fprintf(&b, "orphan container: %s (%.12s, service label %q, %s)", c.Name, c.ContainerID, c.ServiceID, c.Status)
					if c.OtherStore {
						b.WriteString(" of another state store; `aima service prune --force` removes it\n")
					} else {
						b.WriteString("; remove with `aima service prune`\n")
					}
				}
				for _, w := range o.Warnings {
					fmt.Fprintf(&b, "warning: %s\n", w)
				}
				return strings.TrimRight(b.String(), "\n")
			},
		}),
		Declare(Spec[PruneInput, PruneOutput]{
			Name:        "service_prune",
			Description: "Remove orphan containers: containers labelled as aima's (aima.managed=true) whose service has no record. Containers aima does not own are never touched. Orphans created by another state store (another daemon's data dir, or this data dir's store before it was lost) are kept unless force is set, and returned as kept. Returns what was removed.",
			Annotations: Annotations{Destructive: true, Idempotent: true},
			Run: func(ctx context.Context, dom *Domain, in PruneInput, _ Reporter) (PruneOutput, error) {
				res, err := dom.Services.Prune(ctx, in.Force)
				l := listOf(res.Removed)
				kept := res.Kept
				if kept == nil {
					kept = []services.Orphan{}
				}
				return PruneOutput{Items: l.Items, Total: l.Total, Kept: kept}, err
			},
			Render: func(o PruneOutput) string {
				s := fmt.Sprintf("removed %d orphan container(s)", o.Total)
				for _, c := range o.Items {
					s += "\n" + c.Name
				}
				if len(o.Kept) > 0 {
					s += fmt.Sprintf("\nkept %d container(s) of another state store (a lost store's engines, or another daemon's); `aima service prune --force` removes them:", len(o.Kept))
					for _, c := range o.Kept {
						s += "\n" + c.Name
					}
				}
				return s
			},
		}),
	}
}

// gpuDoctor summarises the GPU inventory for system_doctor.
func gpuDoctor(ctx context.Context, dom *Domain) (string, []string) {
	snap, err := dom.Services.GPUList(ctx)
	if err != nil {
		return "unavailable: " + err.Error(), []string{}
	}
	if len(snap.Devices) == 0 {
		return "none: " + snap.Note, []string{}
	}
	d0 := snap.Devices[0]
	sum := fmt.Sprintf("%d GPU(s), driver %s", len(snap.Devices), d0.DriverVersion)
	if d0.CUDAVersion != "" {
		sum += ", CUDA " + d0.CUDAVersion
	}
	lines := []string{}
	for _, d := range snap.Devices {
		l := fmt.Sprintf("GPU %d %s: %s", d.Index, d.Name, gpuMemory(d))
		if h := holders(d); h != "" {
			l += "; held by " + h
		}
		if len(d.InvalidFields) > 0 {
			l += "; the driver reported impossible values, taken as unknown: " + strings.Join(d.InvalidFields, ", ")
		}
		lines = append(lines, l)
	}
	return sum, lines
}
