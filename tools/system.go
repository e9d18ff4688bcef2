package tools

import (
	"context"
	"fmt"
	"strings"

	"aima/services"
)

// DoctorOutput is a health report of the daemon's world.
type DoctorOutput struct {
	Docker   string            `json:"docker" jsonschema:"ok, or why the Docker engine is unreachable"`
	Services int               `json:"services" jsonschema:"number of service records"`
	Failed   []string          `json:"failed" jsonschema:"services in status failed, with their reasons"`
	Orphans  []services.Orphan `json:"orphans" jsonschema:"containers labelled as aima's with no service record; remove with service_prune"`
	GPU      string            `json:"gpu" jsonschema:"GPU state: the number of GPUs and the driver, why there are none, or why the driver cannot be read"`
	GPUs     []string          `json:"gpus" jsonschema:"one line per GPU: memory and the services holding it"`
}

func systemOps() []Op {
	return []Op{
		Declare(Spec[Empty, DoctorOutput]{
			Name:        "system_doctor",
			Description: "Diagnose aima's host: Docker engine reachability, the GPU state (driver, memory, leases), failed services and their reasons, and orphan containers (labelled as aima's but with no service record, e.g. after a lost data dir). Changes nothing; service_prune removes the orphans.",
			Annotations: Annotations{ReadOnly: true, Idempotent: true},
			Run: func(ctx context.Context, env *Env, _ Empty, _ Reporter) (DoctorOutput, error) {
				out := DoctorOutput{Docker: "ok", Failed: []string{}, Orphans: []services.Orphan{}, GPUs: []string{}}
				out.GPU, out.GPUs = gpuDoctor(ctx, env)
				if err := env.Runtime.Ping(ctx); err != nil {
					out.Docker = err.Error()
				}
				all, err := env.Services.List(ctx, "")
				if err != nil {
					return out, err
				}
				out.Services = len(all)
				for _, s := range all {
					if s.Status == services.StatusFailed {
						out.Failed = append(out.Failed, s.ID+": "+s.Reason)
					}
				}
				if out.Docker == "ok" {
					if out.Orphans, err = env.Services.Orphans(ctx); err != nil {
						return out, err
					}
				}
				return out, nil
			},
			Render: func(o DoctorOutput) string {
				var b strings.Builder
				fmt.Fprintf(&b, "docker: %s\ngpu: %s\n", o.Docker, o.GPU)
				for _, g := range o.GPUs {
					fmt.Fprintf(&b, "  %s\n", g)
				}
				fmt.Fprintf(&b, "services: %d\n", o.Services)
				for _, f := range o.Failed {
					fmt.Fprintf(&b, "failed: %s\n", f)
				}
				if len(o.Orphans) == 0 {
					b.WriteString("orphan containers: none")
				}
				for _, c := range o.Orphans {
					fmt.Fprintf(&b, "orphan container: %s (%s, service label %q, %s); remove with `aima service prune`\n", c.Name, c.ContainerID[:12], c.ServiceID, c.Status)
				}
				return strings.TrimRight(b.String(), "\n")
			},
		}),
		Declare(Spec[Empty, List[services.Orphan]]{
			Name:        "service_prune",
			Description: "Remove orphan containers: containers labelled as aima's (aima.managed=true) whose service has no record. Containers aima does not own are never touched. Returns what was removed.",
			Annotations: Annotations{Destructive: true, Idempotent: true},
			Run: func(ctx context.Context, env *Env, _ Empty, _ Reporter) (List[services.Orphan], error) {
				removed, err := env.Services.Prune(ctx)
				return listOf(removed), err
			},
			Render: func(l List[services.Orphan]) string {
				s := fmt.Sprintf("removed %d orphan container(s)", l.Total)
				for _, o := range l.Items {
					s += "\n" + o.Name
				}
				return s
			},
		}),
	}
}

// gpuDoctor summarises the GPU inventory for system_doctor.
func gpuDoctor(ctx context.Context, env *Env) (string, []string) {
	snap, err := env.Services.GPUList(ctx)
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
		lines = append(lines, l)
	}
	return sum, lines
}
