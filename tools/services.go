package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"aima/errs"
	"aima/events"
	"aima/services"
)

// ServiceRef names one service.
type ServiceRef struct {
	ServiceID string `json:"service_id" jsonschema:"service ID (or service name)"`
}

// ServiceCreateInput creates a service.
type ServiceCreateInput struct {
	ModelID       string   `json:"model_id" jsonschema:"a registered model's id or name; anything else is passed to the engine as a remote model reference (e.g. a Hugging Face id)"`
	EngineType    string   `json:"engine_type" jsonschema:"engine type from engine_list, e.g. vllm"`
	Name          string   `json:"name,omitempty" jsonschema:"unique service name (default: the service id)"`
	Port          int      `json:"port,omitempty" jsonschema:"host port to publish the engine on (default: a free port from the daemon's range)"`
	GPUs          string   `json:"gpus,omitempty" jsonschema:"GPUs for the container, in docker --gpus syntax: all, none, N (aima picks N GPUs by its gpu_policy), or device=ID[,ID...] (indexes or GPU-... UUIDs); default: the engine's setting, auto = the tensor-parallel size (1 GPU unless --tensor-parallel-size is given) when aima has a GPU inventory, else all; on Kubernetes all a service's GPUs are on one node aima picks, and all means every GPU of that node"`
	Args          []string `json:"args,omitempty" jsonschema:"extra engine command-line arguments, e.g. --max-model-len=8192"`
	Env           []string `json:"env,omitempty" jsonschema:"extra container environment variables as KEY=VALUE"`
	RestartPolicy string   `json:"restart_policy,omitempty" jsonschema:"no (default) or on-failure: restart after a failure with exponential back-off (10s doubling to 5m, reset after 10m of running)"`
	Aliases       []string `json:"aliases,omitempty" jsonschema:"more model names inference requests (the gateway's model field, inference_chat) may use for this service, e.g. gpt-4o"`
	OnDemand      bool     `json:"on_demand,omitempty" jsonschema:"start the service on the first inference request for its model instead of by service_start; requests wait for the start"`
	IdleTimeout   string   `json:"idle_timeout,omitempty" jsonschema:"release the service (sleep where the engine can, else stop) after this long with no inference request in flight, e.g. 10m; never during an open stream"`
	SwapGroup     string   `json:"swap_group,omitempty" jsonschema:"services of one swap group never run at the same time: a request for a sleeping or stopped member puts the active one to sleep (or stops it) once its requests finish, then wakes or starts the requested one"`
	OnOOM         string   `json:"on_oom,omitempty" jsonschema:"fail or retune: with retune a start that runs out of GPU memory for a cause the engine names with its own figures (the KV cache cannot hold the context length, the KV pool does not fit the memory share, less is free than the share) is tried again, at most twice, with adjusted args, each adjustment recorded on the service; weights that do not fit are never retried. Default: the config's on_oom (fail unless set)"`
	Evictable     bool     `json:"evictable,omitempty" jsonschema:"another service's start or wake that does not fit may put this one to sleep (or stop it) to take its GPUs, while it has no request in flight or waiting, least recently used first; with on_demand it comes back on its next request"`
}

// ServiceStartInput starts a service.
type ServiceStartInput struct {
	ServiceID      string `json:"service_id" jsonschema:"service ID (or service name)"`
	Wait           bool   `json:"wait,omitempty" jsonschema:"block until the start ends (running or failed), reporting every phase as progress; default false returns at once"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty" jsonschema:"deadline of the start in seconds; when it passes the start fails with failure timeout and the reason 'timed out in phase X' (default: the daemon's start_timeout)"`
	Force          bool   `json:"force,omitempty" jsonschema:"skip the GPU fit check of the schedule phase (the GPUs are still leased, even when other services hold them)"`
}

// StartOutput is the outcome of a start request.
type StartOutput struct {
	Service    services.Service `json:"service" jsonschema:"the service record after the request (after the start, with wait)"`
	Note       string           `json:"note,omitempty" jsonschema:"set when the request was a no-op, e.g. already running"`
	EventsFrom uint64           `json:"events_from" jsonschema:"pass as after to service_events to follow this start from its first phase"`
}

// StopOutput is the outcome of a stop request.
type StopOutput struct {
	Service services.Service `json:"service"`
	Note    string           `json:"note,omitempty" jsonschema:"set when the request was a no-op"`
}

// ServiceListInput filters the list.
type ServiceListInput struct {
	Status string `json:"status,omitempty" jsonschema:"only services with this status: created, creating, running, unhealthy, sleeping, stopping, stopped, failed"`
}

// ServiceWaitInput waits for a status.
type ServiceWaitInput struct {
	ServiceID      string `json:"service_id" jsonschema:"service ID (or service name)"`
	For            string `json:"for" jsonschema:"status to wait for: running, stopped or failed"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty" jsonschema:"give up after this many seconds (default 600)"`
}

// durationOf parses a duration field ("10m", "90s"); empty is zero.
func durationOf(v, field string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errs.Invalid(field, "field %q: %q is not a duration like 90s or 10m", field, v)
	}
	return d, nil
}

func timeoutOf(secs int, field string) (time.Duration, error) {
	if secs < 0 || secs > 7*24*3600 {
		return 0, errs.Invalid(field, "%s must be between 0 and 604800", field)
	}
	return time.Duration(secs) * time.Second, nil
}

func renderService(s services.Service) string {
	line := fmt.Sprintf("%s (%s)  %s", s.ID, s.Name, s.Status)
	if s.Status == services.StatusCreating && s.Phase != "" {
		line += " [" + string(s.Phase) + "]"
	}
	line += fmt.Sprintf("  %s on %s  %s", s.EngineType, s.ModelID, s.Endpoint)
	if l := s.GPULease; l != nil {
		line += fmt.Sprintf("\n  gpus: %s (%s), %.2f of each", l.Indexes(), strings.Join(l.UUIDs(), ", "), l.Fraction)
	}
	if s.Failure != "" {
		line += "\n  failure: " + string(s.Failure)
	}
	if t := s.Traffic; t != nil {
		line += fmt.Sprintf("\n  requests: %d (%d in flight, %d waiting, %d failed)  tokens in/out: %d/%d  ttft: %.1f ms last, %.1f ms avg",
			t.Requests, t.InFlight, t.Waiting, t.Failed, t.TokensIn, t.TokensOut, t.LastTTFTMs, t.AvgTTFTMs)
	}
	if s.Reason != "" && s.Status != services.StatusRunning {
		line += "\n  reason: " + s.Reason
	}
	for _, w := range s.Warnings {
		line += "\n  warning: " + w
	}
	return line
}

// follow forwards the service's events after from to rep until a status
// event ends the start (or ctx ends), then returns the final record. The
// start itself belongs to the daemon: ending ctx stops only the following.
func follow(ctx context.Context, dom *Domain, id string, from uint64, rep Reporter) (services.Service, error) {
	bus := dom.Services.Bus()
	sub := bus.Subscribe(id, from)
	for {
		idle, cancel := context.WithTimeout(ctx, time.Second)
		ev, err := sub.Next(idle)
		cancel()
		if err == nil {
			rep.Event(ev)
			if err := services.DeletedError(ev); err != nil {
				return services.Service{ID: id}, err
			}
			if ev.Type == events.TypeStatus && !inFlight(services.Status(ev.Status)) {
				return dom.Services.Get(ctx, id)
			}
			continue
		}
		if ctx.Err() != nil {
			s, _ := dom.Services.Get(context.WithoutCancel(ctx), id)
			return s, ctx.Err()
		}
		// Quiet for a second: make sure the start has not ended unseen.
		s, err := dom.Services.Get(ctx, id)
		if err != nil {
			return s, err
		}
		if !inFlight(s.Status) && sub.Cursor() >= bus.LastSeq(id) {
			return s, nil
		}
	}
}

func inFlight(s services.Status) bool {
	return s == services.StatusCreating || s == services.StatusStopping
}

// startOutcome turns a finished start into the op's result or error.
func startOutcome(s services.Service) error {
	if s.Status == services.StatusFailed {
		kind := errs.Unavailable
		if s.Failure == services.FailureTimeout {
			kind = errs.DeadlineExceeded
		}
		if s.Failure == services.FailureUnschedulable {
			kind = errs.Conflict // refused before anything was pulled: the GPUs are taken or too small
		}
		return errs.New(kind, "service %s failed: %s", s.ID, s.Reason)
	}
	if s.Status != services.StatusRunning {
		return errs.New(errs.Conflict, "service %s ended the start as %s: %s", s.ID, s.Status, s.Reason)
	}
	return nil
}

func startAndMaybeWait(ctx context.Context, dom *Domain, res services.StartResult, wait bool, rep Reporter) (StartOutput, error) {
	out := StartOutput{Service: res.Service, Note: res.Note, EventsFrom: res.FromSeq}
	if !wait || res.Service.Status == services.StatusRunning {
		return out, nil
	}
	s, err := follow(ctx, dom, res.Service.ID, res.FromSeq, rep)
	out.Service = s
	if err != nil {
		return out, err
	}
	return out, startOutcome(s)
}

func serviceOps() []Op {
	return append(append(serviceLifecycleOps(), serviceObserveOps()...), serviceMetricsOp())
}

func serviceLifecycleOps() []Op {
	return []Op{
		Declare(Spec[ServiceCreateInput, services.Service]{
			Name:        "service_create",
			Description: "Create an inference service: one engine (e.g. vllm) serving one model, in its own Docker container with its own host port. Creating does not start it; call service_start next. Many services may share a model or an engine. If model_id is not a registered model it is passed to the engine as a remote reference and the result carries a warning.",
			Run: func(ctx context.Context, dom *Domain, in ServiceCreateInput, _ Reporter) (services.Service, error) {
				idle, err := durationOf(in.IdleTimeout, "idle_timeout")
				if err != nil {
					return services.Service{}, err
				}
				return dom.Services.Create(ctx, services.CreateSpec{ModelID: in.ModelID, EngineType: in.EngineType, Name: in.Name, Port: in.Port, GPUs: in.GPUs, Args: in.Args, Env: in.Env, RestartPolicy: in.RestartPolicy,
					Aliases: in.Aliases, OnDemand: in.OnDemand, IdleTimeout: idle, SwapGroup: in.SwapGroup, Evictable: in.Evictable, OnOOM: in.OnOOM})
			},
			Render: renderService,
		}),
		Declare(Spec[ServiceStartInput, StartOutput]{
			Name:        "service_start",
			Description: "Start a service. The daemon runs the start in the background through these phases: cleanup (stale containers), schedule (picks GPUs and checks the model fits, leasing them to the service; a refusal fails the start here, in milliseconds, with both figures in GiB and a suggestion, and the call returns a conflict error), pull (the image, with bytes per layer), create, start, loading (the engine loads the model) and health_check (HTTP 200 on the engine's health endpoint), ending in status running or failed with a reason (engine error line, exit code, OOM flag). With wait=true the call blocks until then and reports each phase as progress; it returns an error if the start failed. Without wait it returns at once: follow with service_wait or service_events. Starting a running service is a no-op.",
			Annotations: Annotations{Idempotent: true, LongRunning: true},
			Positional:  "service_id",
			Run: func(ctx context.Context, dom *Domain, in ServiceStartInput, rep Reporter) (StartOutput, error) {
				return runStart(ctx, dom, in, rep, dom.Services.StartWith)
			},
			Render: renderStart,
		}),
		Declare(Spec[ServiceRef, StopOutput]{
			Name:        "service_stop",
			Description: "Stop a service: a start in progress is cancelled, the engine container gets SIGTERM (SIGKILL after the stop timeout) and the status becomes stopped. The container is kept so its logs stay readable. Stopping a stopped service is a no-op.",
			Annotations: Annotations{Idempotent: true},
			Positional:  "service_id",
			Run: func(ctx context.Context, dom *Domain, in ServiceRef, _ Reporter) (StopOutput, error) {
				res, err := dom.Services.Stop(ctx, in.ServiceID)
				return StopOutput{Service: res.Service, Note: res.Note}, err
			},
			Render: func(o StopOutput) string { return strings.TrimSpace(o.Note + "\n" + renderService(o.Service)) },
		}),
		Declare(Spec[ServiceStartInput, StartOutput]{
			Name:        "service_restart",
			Description: "Stop a service if it runs, then start it again (same phases as service_start; wait and timeout_seconds work the same way).",
			Annotations: Annotations{LongRunning: true},
			Positional:  "service_id",
			Run: func(ctx context.Context, dom *Domain, in ServiceStartInput, rep Reporter) (StartOutput, error) {
				return runStart(ctx, dom, in, rep, dom.Services.RestartWith)
			},
			Render: renderStart,
		}),
		Declare(Spec[ServiceRef, services.Service]{
			Name:        "service_sleep",
			Description: "Put a running service to sleep: the engine frees its GPU memory but keeps running (vLLM's sleep mode: weights offloaded to CPU memory; SGLang's memory release with --enable-memory-saver), so the next inference request, or service_start, wakes it in seconds instead of a cold start. Requests in flight finish first. Only services created with on_demand, idle_timeout or swap_group on an engine that can sleep (engine_list can_sleep: vllm, sglang; not llamacpp) have sleep mode; sleeping a sleeping service is a no-op.",
			Annotations: Annotations{Idempotent: true},
			Positional:  "service_id",
			Run: func(ctx context.Context, dom *Domain, in ServiceRef, _ Reporter) (services.Service, error) {
				return dom.Services.Sleep(ctx, in.ServiceID)
			},
			Render: renderService,
		}),
		Declare(Spec[ServiceRef, services.Service]{
			Name:        "service_delete",
			Description: "Delete a service: stop it, remove its containers, its record and its history. Cannot be undone. The model is not touched.",
			Annotations: Annotations{Destructive: true},
			Positional:  "service_id",
			Run: func(ctx context.Context, dom *Domain, in ServiceRef, _ Reporter) (services.Service, error) {
				s, err := dom.Services.Delete(ctx, in.ServiceID)
				if err == nil && dom.EngineMetrics != nil {
					// Its engine's samples (kept for token rates) go too.
					dom.EngineMetrics.Forget(s.ID)
				}
				return s, err
			},
			Render: func(s services.Service) string { return "deleted " + s.ID },
		}),
	}
}

// runStart is the body service_start and service_restart share: the
// input's timeout and force become the start's options, begin (the
// manager's StartWith or RestartWith) starts it, and wait=true follows it
// to its end.
func runStart(ctx context.Context, dom *Domain, in ServiceStartInput, rep Reporter,
	begin func(context.Context, string, services.StartOptions) (services.StartResult, error)) (StartOutput, error) {
	timeout, err := timeoutOf(in.TimeoutSeconds, "timeout_seconds")
	if err != nil {
		return StartOutput{}, err
	}
	res, err := begin(ctx, in.ServiceID, services.StartOptions{Timeout: timeout, Force: in.Force})
	if err != nil {
		return StartOutput{}, err
	}
	return startAndMaybeWait(ctx, dom, res, in.Wait, rep)
}

// renderStart shows the started service, after the start's note if any.
func renderStart(o StartOutput) string {
	s := renderService(o.Service)
	if o.Note != "" {
		s = o.Note + "\n" + s
	}
	return s
}

// waitFor parses the status a wait targets.
func waitFor(s string) (services.Status, error) {
	st, err := services.ParseStatus("for", s)
	if err != nil {
		return "", err
	}
	switch st {
	case services.StatusRunning, services.StatusStopped, services.StatusFailed:
		return st, nil
	}
	return "", errs.Invalid("for", "can only wait for running, stopped or failed, not %s", s)
}

// eventText renders one event line.
func eventText(ev events.Event) string {
	return fmt.Sprintf("%s  %-8s %-12s %s", ev.Time.Local().Format("15:04:05.000"), ev.Type, ev.Phase, ev.Message)
}
