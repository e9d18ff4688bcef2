package services

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"aima/errs"
	"aima/events"
	"aima/gpu"
	"aima/runtime"
)

// The GPU glue of the lifecycle: the schedule phase, the lease on the
// service record, and the GPU facts in container specs and failure
// reasons. Inventory, estimates and placement policy live in package gpu.

// releaseLeaseOnEnd drops the GPU lease when a service stops or fails: a
// lease lives exactly as long as the service may use its GPUs.
func releaseLeaseOnEnd(s *Service) {
	if s.Status == StatusStopped || s.Status == StatusFailed {
		s.GPULease = nil
	}
}

// schedule is the start's schedule phase: it resolves the service's GPU
// request against the inventory, checks that the model fits, and records
// the lease on the service, all before anything is pulled or created.
func (st *starter) schedule(ctx context.Context) *failure {
	m, s := st.m, st.s
	if err := st.enter(ctx, PhaseSchedule, "choosing GPUs (gpus "+s.GPUs+")"); err != nil {
		return &failure{kind: FailureInternal, reason: err.Error()}
	}
	sel, err := gpu.ParseSelection(s.GPUs)
	if err != nil { // a request stored before a rule it breaks (a GPU named twice)
		return &failure{kind: FailureUnschedulable, reason: fmt.Sprintf("schedule: %v", err)}
	}
	if !sel.Wants() {
		m.message(s.ID, s.Run, PhaseSchedule, "no GPU requested")
		return nil
	}
	d, note, err := m.placeService(ctx, s, st.force)
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return &failure{kind: FailureInterrupted, reason: "interrupted"}
		}
		return &failure{kind: scheduleFailure(err), reason: "schedule: " + err.Error()}
	case d == nil:
		m.message(s.ID, s.Run, PhaseSchedule, note)
		return nil
	}
	st.s.GPULease = &d.Lease
	m.message(s.ID, s.Run, PhaseSchedule, d.Message)
	return nil
}

// scheduleFailure is the kind of a failed schedule phase.
func scheduleFailure(err error) FailureKind {
	var r *gpu.Refusal
	switch {
	case errors.As(err, &r):
		return FailureUnschedulable
	case errs.Is(err, errs.Unavailable):
		return FailureGPUUnavailable
	case errs.Is(err, errs.InvalidArgument):
		return FailureUnschedulable // a request or model files that no placement can serve
	}
	return FailureInternal
}

// placeService decides the service's GPUs and records the lease on its
// record. Without an inventory (no NVIDIA driver) it returns no decision
// and a note: the container gets GPUs as requested, unchecked.
//
// The decision is first tried on the inventory as last read: a refusal
// that rests on leases or total capacity stands at once (no nvidia-smi
// run, so it takes milliseconds); anything else is decided again on a
// fresh read, since free memory changes. A cluster's inventory is read
// fresh at once (its watches' caches).
func (m *Manager) placeService(ctx context.Context, s Service, force bool) (*gpu.Decision, string, error) {
	if !force {
		// A cluster's capacity changes (nodes come and go) and its fresh
		// read is a cache read: it is always decided on a fresh one.
		if req, snap, note, err := m.placementRequest(ctx, s, false, false); err == nil && note == "" && !snap.Cluster() {
			if _, err := m.place(ctx, snap, req, ""); isFinalRefusal(err) && !m.mayEvictFor(ctx, s.ID) {
				return nil, "", err
			}
		}
	}
	req, snap, note, err := m.placementRequest(ctx, s, force, true)
	if err != nil || note != "" {
		return nil, note, err
	}
	d, err := m.placeEvicting(ctx, s, snap, req, func(msg string) { m.message(s.ID, s.Run, PhaseSchedule, msg) })
	if err != nil {
		return nil, "", err
	}
	return &d, "", nil
}

// place runs the placement policy under the placement lock, against the
// leases recorded on service records, and records the lease on the
// service recordFor (none: a dry run).
func (m *Manager) place(ctx context.Context, snap gpu.Snapshot, req gpu.Request, recordFor string) (gpu.Decision, error) {
	m.placeMu.Lock()
	defer m.placeMu.Unlock()
	held, err := m.heldLeases(ctx)
	if err != nil {
		return gpu.Decision{}, err
	}
	if req.Cordoned, err = m.Cordons(ctx); err != nil { // read under the lock Cordon takes
		return gpu.Decision{}, err
	}
	d, err := gpu.Place(snap, held, req, m.opts.GPUPolicy)
	if err != nil || recordFor == "" {
		return d, err
	}
	run := req.Run
	_, err = m.col.Update(ctx, recordFor, func(x *Service) error {
		if run > 0 && (x.Status != StatusCreating || x.Run != run) {
			return errs.New(errs.Conflict, "service %s is no longer starting", recordFor)
		}
		x.GPULease = &d.Lease
		return nil
	})
	return d, err
}

// isFinalRefusal reports a refusal that a fresh inventory read would not
// change.
func isFinalRefusal(err error) bool {
	var r *gpu.Refusal
	return errors.As(err, &r) && !r.Live
}

// placementRequest reads the inventory and estimates the service's model.
// A non-empty note means there is nothing to place on.
func (m *Manager) placementRequest(ctx context.Context, s Service, force, fresh bool) (gpu.Request, gpu.Snapshot, string, error) {
	sel, err := gpu.ParseSelection(s.GPUs)
	if err != nil {
		return gpu.Request{}, gpu.Snapshot{}, "", errs.Invalid("gpus", "%v", err)
	}
	read := m.opts.GPUs.Last
	if fresh {
		read = m.opts.GPUs.Refresh
	}
	snap, err := read(ctx)
	if err != nil {
		if !force {
			return gpu.Request{}, gpu.Snapshot{}, "", errs.Wrap(errs.Unavailable, err, "GPU inventory (start with force to run without it)")
		}
		return gpu.Request{}, gpu.Snapshot{}, "GPU inventory unavailable (" + err.Error() + "); forced: GPUs passed as requested, unchecked", nil
	}
	if len(snap.Devices) == 0 {
		return gpu.Request{}, snap, fmt.Sprintf("no GPU inventory (%s): GPUs passed to the container as requested (%s)", strings.TrimSpace(snap.Note), sel), nil
	}
	est, err := m.estimate(ctx, s.ModelID, s.ModelPath, s.EngineType, s.Args)
	if err != nil {
		return gpu.Request{}, snap, "", err
	}
	cordoned, err := m.Cordons(ctx)
	if err != nil {
		return gpu.Request{}, snap, "", err
	}
	return gpu.Request{ServiceID: s.ID, Run: s.Run, Selection: sel, Estimate: est, Force: force, Cordoned: cordoned, Now: m.now()}, snap, "", nil
}

// estimate estimates a model's memory under an engine's args (the
// catalog's args, then the service's).
func (m *Manager) estimate(ctx context.Context, modelID, modelPath, engineType string, args []string) (gpu.Estimate, error) {
	eng, err := m.catalog.Get(engineType)
	if err != nil {
		return gpu.Estimate{}, err
	}
	prof := gpu.ProfileFor(eng.Type)
	ea, err := prof.Parse(append(append([]string(nil), eng.Args...), args...))
	if err != nil {
		return gpu.Estimate{}, err
	}
	path, format := "", ""
	if modelPath != "" {
		if mod, err := m.models.Get(ctx, modelID); err == nil {
			path, format = mod.Path, mod.Format
		} else {
			path = modelPath
		}
	}
	est, err := gpu.EstimateModel(path, format, prof, ea)
	if err != nil {
		name := modelID
		if name == "" {
			name = path
		}
		return gpu.Estimate{}, &errs.Error{Kind: errs.KindOf(err), Field: errs.FieldOf(err), Msg: "model " + name, Err: err}
	}
	return est, nil
}

// heldLeases are the leases recorded on service records.
func (m *Manager) heldLeases(ctx context.Context) ([]gpu.Held, error) {
	all, err := m.shared(ctx)
	if err != nil {
		return nil, err
	}
	var held []gpu.Held
	for _, o := range all {
		if o.GPULease != nil {
			held = append(held, gpu.Held{ServiceID: o.ID, Name: o.Name, Lease: *o.GPULease, Dormant: o.Status == StatusSleeping})
		}
	}
	return held, nil
}

// AcquireGPUs places the service and records its lease: the same
// request, policy and fit check as a start's schedule phase. A service that
// keeps a lease while it sleeps (its engine is bound to those GPUs) takes
// the same devices back, checked only against other services' leases. A
// refusal is a Conflict error naming the figures and the holders. Sleeping
// is the release: a sleeping service's lease does not count against others
// (see heldLeases), and Wake calls this before waking the engine.
func (m *Manager) AcquireGPUs(ctx context.Context, ref string, force bool) (Service, error) {
	s, err := m.Get(ctx, ref)
	if err != nil {
		return Service{}, err
	}
	req, snap, note, err := m.placementRequest(ctx, s, force, true)
	if err != nil || note != "" {
		return s, err
	}
	if s.GPULease != nil {
		req.Selection = gpu.Selection{Kind: gpu.SelectDevices, Devices: s.GPULease.UUIDs()}
		req.Resume = true
	}
	req.Run = 0 // not a start: the status does not matter
	tell := func(msg string) {
		m.bus.Publish(events.Event{ServiceID: s.ID, Run: s.Run, Type: events.TypeMessage, Status: string(s.Status), Message: msg})
	}
	if _, err := m.placeEvicting(ctx, s, snap, req, tell); err != nil {
		return Service{}, err
	}
	return m.Get(ctx, s.ID)
}

// containerGPUs is how the service's GPUs reach its container: the leased
// UUIDs when it holds a lease, else its request as given (no inventory).
// NVIDIA_VISIBLE_DEVICES names exactly the container's GPUs in every mode.
func (m *Manager) containerGPUs(s Service) (runtime.GPURequest, string) {
	attach := m.opts.GPUAttach
	if s.GPULease != nil {
		ids := s.GPULease.UUIDs()
		return runtime.GPURequest{DeviceIDs: ids, Attach: attach}, strings.Join(ids, ",")
	}
	sel, err := gpu.ParseSelection(s.GPUs)
	if err != nil {
		return runtime.GPURequest{}, ""
	}
	switch sel.Kind {
	case gpu.SelectAll, gpu.SelectAuto:
		return runtime.GPURequest{All: true, Attach: attach}, "all"
	case gpu.SelectCount:
		return runtime.GPURequest{Count: sel.Count, Attach: attach}, ""
	case gpu.SelectDevices:
		return runtime.GPURequest{DeviceIDs: sel.Devices, Attach: attach}, strings.Join(sel.Devices, ",")
	}
	return runtime.GPURequest{}, ""
}

// leaseNode is the cluster node the service's GPUs were leased on, where
// its container must run; empty on one host or without a lease.
func leaseNode(s Service) string {
	if s.GPULease == nil {
		return ""
	}
	return s.GPULease.Node
}

// withVisibleDevices sets NVIDIA_VISIBLE_DEVICES in env to visible,
// replacing any other value (user values that contradict it were refused
// at create; the engine catalog's are overridden).
func withVisibleDevices(env []string, visible string) []string {
	if visible == "" {
		return env
	}
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, gpu.EnvNvidiaVisible+"=") {
			out = append(out, kv)
		}
	}
	return append(out, gpu.EnvNvidiaVisible+"="+visible)
}

// explainMemoryFailure adds, to a start that failed because the engine
// ran out of GPU memory, the state of its GPUs read right after the
// failure and the engine's suggestion (in its own flags). Another failure
// the engine's rules know gets its suggestion alone.
func (m *Manager) explainMemoryFailure(ctx context.Context, s Service, f *failure) {
	if f == nil || f.rule == nil {
		return
	}
	if !f.rule.Memory {
		if f.rule.Suggestion != "" {
			f.reason += "; suggestion: " + f.rule.Suggestion
		}
		return
	}
	snap, err := m.opts.GPUs.Refresh(ctx)
	state := ""
	switch {
	case err != nil:
		state = "GPU state unavailable: " + err.Error()
	case len(snap.Devices) == 0:
		state = "no GPU inventory"
	default:
		var uuids []string
		if s.GPULease != nil {
			uuids = s.GPULease.UUIDs()
		}
		state = "GPU state after the failure: " + gpu.StateText(snap, uuids)
	}
	f.reason += "; " + state + "; suggestion: " + f.rule.Suggestion
}

// checkNamedGPUs refuses, at create, a device list that names one GPU
// twice (by its index and by its UUID), when the inventory says so; the
// schedule phase checks it again on the inventory of the start. A name the
// inventory lacks is left to the schedule phase (GPUs come and go).
func (m *Manager) checkNamedGPUs(ctx context.Context, gpus string) error {
	sel, err := gpu.ParseSelection(gpus)
	if err != nil || sel.Kind != gpu.SelectDevices {
		return nil
	}
	snap, err := m.opts.GPUs.Last(ctx)
	if err != nil {
		return nil
	}
	if _, err := gpu.ResolveDevices(snap, sel); errs.Is(err, errs.InvalidArgument) {
		return err
	}
	return nil
}

// checkGPURequest validates a service's GPU request and GPU environment
// at create: the selection, the engine's memory args, that the selection
// has room for the tensor-parallel size, and that no user environment
// contradicts the assignment.
func checkGPURequest(engineType string, engineArgs []string, gpus string, args, env []string) error {
	sel, err := gpu.ParseSelection(gpus)
	if err != nil {
		return errs.Invalid("gpus", "%v", err)
	}
	ea, err := gpu.ProfileFor(engineType).Parse(append(append([]string(nil), engineArgs...), args...))
	if err != nil {
		return err
	}
	n := 0
	switch sel.Kind {
	case gpu.SelectCount:
		n = sel.Count
	case gpu.SelectDevices:
		n = len(sel.Devices)
	}
	if n > 0 && ea.TP > n {
		return errs.Invalid("gpus", "gpus %s gives %d GPU(s) but the tensor parallel size is %d: ask for %d GPUs or lower it", sel, n, ea.TP, ea.TP)
	}
	return gpu.CheckVisibleEnv(sel, env)
}
