package services

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"aima/engines"
	"aima/errs"
	"aima/events"
	"aima/gpu"
	"aima/internal/kernelports"
	"aima/internal/keylock"
	"aima/models"
	"aima/runtime"
	"aima/settings"
	"aima/state"
)

// Options are the manager's settings (from the config file).
type Options struct {
	BindHost       string        // host IP engine ports are published on
	PortLow        int           // range of host ports handed out
	PortHigh       int           //
	StartTimeout   time.Duration // default start deadline
	StopTimeout    time.Duration // SIGTERM → SIGKILL grace
	HealthInterval time.Duration // readiness probe period during a start
	// LivenessInterval is how often running services are probed.
	LivenessInterval time.Duration
	// UnhealthyGrace is how long a failing liveness probe is tolerated
	// before the service is failed.
	UnhealthyGrace time.Duration
	// RestartBackoff is the first delay of the on-failure policy.
	RestartBackoff time.Duration
	// AllowPrivilegedArgs accepts engine args that run code shipped with a
	// model (--trust-remote-code) and env read by the NVIDIA runtime on the
	// host (NVIDIA_*); see validateArgs.
	AllowPrivilegedArgs bool
	Logger              *slog.Logger
	// Journal is the event journal the bus writes (nil: the bus has none
	// or the manager need not order with it). A delete forgets the
	// service's history through it, after the events it still queues.
	Journal *events.StoreJournal

	// GPUs is the host's GPU inventory (nil: none; services get GPUs
	// as their request says, without leases or a fit check).
	GPUs *gpu.Inventory
	// GPUAttach is how leased GPUs reach containers
	// (device_requests, cdi, env); containerGPUs passes it on in the
	// runtime's GPURequest.
	GPUAttach runtime.GPUAttach
	// GPUPolicy is how N GPUs are picked (pack or spread).
	GPUPolicy settings.GPUPolicy
	// OnOOM is the on_oom of services created without one (retune.go).
	OnOOM string
}

// DefaultOptions are the settings a zero Options field takes; the config
// file's defaults are the same constants (settings).
func DefaultOptions() Options {
	return Options{
		BindHost: settings.BindHost, PortLow: settings.PortLow, PortHigh: settings.PortHigh,
		StartTimeout: settings.StartTimeout, StopTimeout: settings.StopTimeout, HealthInterval: settings.HealthInterval,
		LivenessInterval: settings.LivenessInterval, UnhealthyGrace: settings.UnhealthyGrace, RestartBackoff: settings.RestartBackoff,
		GPUAttach: runtime.GPUAttachDeviceRequests, GPUPolicy: settings.GPUPolicyPack,
	}
}

// withDefaults fills unset fields from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.BindHost == "" {
		o.BindHost = d.BindHost
	}
	if o.PortLow == 0 {
		o.PortLow, o.PortHigh = d.PortLow, d.PortHigh
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&o.StartTimeout, &d.StartTimeout}, {&o.StopTimeout, &d.StopTimeout}, {&o.HealthInterval, &d.HealthInterval},
		{&o.LivenessInterval, &d.LivenessInterval}, {&o.UnhealthyGrace, &d.UnhealthyGrace}, {&o.RestartBackoff, &d.RestartBackoff},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.GPUs == nil {
		o.GPUs = gpu.NewInventory(nil)
	}
	if o.GPUAttach == "" {
		o.GPUAttach = runtime.GPUAttachDeviceRequests
	}
	if o.GPUPolicy == "" {
		o.GPUPolicy = settings.GPUPolicyPack
	}
	return o
}

// Manager owns every service's lifecycle. Starts run in goroutines owned by
// the manager (not by the request that asked), so a client that disconnects
// changes nothing; Close cancels them and waits.
type Manager struct {
	col     *state.Collection[Service]
	store   state.Store
	rt      runtime.Runtime
	bus     *events.Bus
	catalog *engines.Catalog
	models  *models.Registry
	opts    Options
	log     *slog.Logger
	http    *http.Client
	now     func() time.Time

	ctx    context.Context // daemon lifetime
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// locks serialise the lifecycle operations of each service.
	locks *keylock.Locks
	jobs  map[string]*startJob // starts in progress
	// restarts holds the run whose failure a restart timer waits on, per
	// service, so a reconcile does not schedule the same restart twice.
	restarts map[string]int
	portMu   sync.Mutex // port allocation is global
	// placeMu is the one placement lock: reading the leases of all
	// services and recording a new one happen under it, so two starts
	// never take the same GPU.
	placeMu sync.Mutex
	// evictMu serialises evictions (evict.go), so two starts never both
	// evict for the same room.
	evictMu sync.Mutex

	dockerDown atomic.Bool // the watcher lost the engine

	// rewatchDelay is how long a start waits before watching its container
	// again after the runtime connection broke; resubscribeDelay is the
	// watcher's pause before it subscribes again after its event stream
	// ended. Unit tests shorten both before Run.
	rewatchDelay, resubscribeDelay time.Duration
	// ephemeralFile is where the kernel says which ports it hands out as
	// source ports (tests point it elsewhere).
	ephemeralFile string
	// mutationGrace is how long a start's runtime call that changes what
	// exists may go on after a stop or delete cancelled the start (see
	// changeRuntime). Unit tests shorten it.
	mutationGrace time.Duration
	hooks         testHooks
	storeIDOnce   sync.Once // see storeID
	storeIDVal    string

	// serving is the serving layer (Attach); onTransition the transition
	// hook (OnTransition). See serving.go.
	serving      Serving
	onTransition transitionHooks
}

// testHooks stop the manager at exact points for unit tests that need an
// interleaving timing cannot guarantee. The daemon sets none.
type testHooks struct {
	// beforeRunning runs when a start saw the engine healthy, before it
	// records running.
	beforeRunning func(Service)
	// eventHandled runs after the watcher handled a runtime event.
	eventHandled func(runtime.Event)
}

type startJob struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// Causes that end a start without it being the engine's fault.
var (
	errStopRequested  = errors.New("stop requested")
	errDaemonStopping = errors.New("daemon shutting down")
)

// NewManager wires a manager. The bus should journal into the same store.
func NewManager(store state.Store, rt runtime.Runtime, bus *events.Bus, catalog *engines.Catalog, reg *models.Registry, opts Options) *Manager {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancelCause(context.Background())
	col := state.NewCollection[Service](store, "services/", "service").WithCache()
	m := &Manager{
		col: col, store: store,
		rt: rt, bus: bus, catalog: catalog, models: reg, opts: opts, log: opts.Logger,
		http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		now:  time.Now, ctx: ctx, cancel: cancel,
		locks: keylock.New(), jobs: map[string]*startJob{}, restarts: map[string]int{},
		rewatchDelay: 500 * time.Millisecond, resubscribeDelay: time.Second, mutationGrace: 10 * time.Second,
		serving: noServing{}, ephemeralFile: kernelports.File,
	}
	return m
}

// Bus returns the event bus the manager publishes to.
func (m *Manager) Bus() *events.Bus { return m.bus }

// Catalog returns the effective engine catalog.
func (m *Manager) Catalog() *engines.Catalog { return m.catalog }

// Models returns the model registry.
func (m *Manager) Models() *models.Registry { return m.models }

// Close cancels starts in progress (leaving their records as they are, for
// the next daemon to resume) and waits for every manager goroutine to end.
func (m *Manager) Close() {
	m.cancel(errDaemonStopping)
	m.wg.Wait()
}

// lock serialises lifecycle operations of one service, for the manager's
// own work (the watcher, liveness, reconcile), which waits as long as the
// holder takes. What holds it is bounded: a stop by the stop timeout and
// the runtime, a sleep or wake by its engine call's 10 minutes.
func (m *Manager) lock(id string) func() {
	unlock, _ := m.locks.Lock(context.Background(), id)
	return unlock
}

// lockFor is lock for a caller's request: it gives up when ctx ends (the
// client went away, its deadline passed), instead of holding the request's
// goroutine until the service is free.
func (m *Manager) lockFor(ctx context.Context, id string) (func(), error) {
	unlock, err := m.locks.Lock(ctx, id)
	if err != nil {
		return nil, errs.Wrap(errs.KindOf(err), err, "service %s is busy with another operation (a start, stop, sleep or wake)", id)
	}
	return unlock, nil
}

// Get returns a service by ID or name.
func (m *Manager) Get(ctx context.Context, ref string) (Service, error) {
	if ref == "" {
		return Service{}, errs.Invalid("service_id", "service_id is required")
	}
	s, err := m.col.Get(ctx, ref)
	if err == nil {
		s.Stale = m.dockerDown.Load()
		s.Traffic = m.serving.Figures(s.ID)
		return s, nil
	}
	if !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.InvalidArgument) {
		return Service{}, err
	}
	all, lerr := m.shared(ctx)
	if lerr != nil {
		return Service{}, lerr
	}
	for _, p := range all {
		if p.Name == ref {
			s := *p
			s.Stale = m.dockerDown.Load()
			s.Traffic = m.serving.Figures(s.ID)
			return s, nil
		}
	}
	return Service{}, errs.NotFoundf("service %s not found", ref)
}

// List returns services oldest first, optionally only those with a status:
// copies the caller may change.
func (m *Manager) List(ctx context.Context, status Status) ([]Service, error) {
	recs, err := m.shared(ctx)
	if err != nil {
		return nil, err
	}
	out := []Service{}
	for _, p := range recs {
		if status == "" || p.Status == status {
			out = append(out, *p)
		}
	}
	sort.Stable(byCreated(out))
	stale := m.dockerDown.Load()
	for i := range out {
		out[i].Stale = stale
		out[i].Traffic = m.serving.Figures(out[i].ID)
	}
	return out, nil
}

// ListJSON is List as JSON: each listed service's encoding, oldest first,
// optionally only those with a status. The encodings are the record
// cache's, written out as they are, so listing 10,000 services neither
// copies nor encodes each one; a service whose listed record differs from
// the stored one (a stale status, gateway traffic figures) is encoded anew.
func (m *Manager) ListJSON(ctx context.Context, status Status) ([]json.RawMessage, error) {
	recs, raws, _, err := m.col.ScanShared(ctx)
	if err != nil {
		return nil, err
	}
	// Filter and sort the shared records in place (the slices are this
	// call's own), keeping each encoding next to its record.
	n := 0
	for i := range recs {
		if status == "" || recs[i].Status == status {
			recs[n] = recs[i]
			if raws != nil {
				raws[n] = raws[i]
			}
			n++
		}
	}
	recs = recs[:n]
	if raws == nil {
		raws = make([]json.RawMessage, n)
	}
	raws = raws[:n]
	sort.Stable(sharedByCreated{recs, raws})
	stale := m.dockerDown.Load()
	for i, p := range recs {
		traffic := m.serving.Figures(p.ID)
		if raws[i] != nil && !stale && traffic == nil {
			continue
		}
		s := *p
		s.Stale, s.Traffic = stale, traffic
		if raws[i], err = json.Marshal(s); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "encode service %s", s.ID)
		}
	}
	return raws, nil
}

// byCreated orders services oldest first (then by ID).
type byCreated []Service

func (b byCreated) Len() int           { return len(b) }
func (b byCreated) Less(i, j int) bool { return createdBefore(&b[i], &b[j]) }
func (b byCreated) Swap(i, j int)      { b[i], b[j] = b[j], b[i] }

// sharedByCreated orders shared records oldest first (then by ID), moving
// their encodings along.
type sharedByCreated struct {
	s   []*Service
	enc []json.RawMessage
}

func (b sharedByCreated) Len() int           { return len(b.s) }
func (b sharedByCreated) Less(i, j int) bool { return createdBefore(b.s[i], b.s[j]) }
func (b sharedByCreated) Swap(i, j int) {
	b.s[i], b.s[j] = b.s[j], b.s[i]
	b.enc[i], b.enc[j] = b.enc[j], b.enc[i]
}

func createdBefore(x, y *Service) bool {
	if x.CreatedAt.Equal(y.CreatedAt) {
		return x.ID < y.ID
	}
	return x.CreatedAt.Before(y.CreatedAt)
}

// shared returns every readable service record in ID order, straight from
// the record cache: nothing is decoded or copied, so the manager's own
// full lists (liveness, idle, reconcile, name and port checks) cost a
// slice of pointers. The records must not be modified.
func (m *Manager) shared(ctx context.Context) ([]*Service, error) {
	recs, _, _, err := m.col.ScanShared(ctx)
	return recs, err
}

// ListShared is List of every status, in ID order, for readers that list
// all services often, such as the metrics collector on every scrape: the
// records are the cache's own (see shared), so it decodes and copies
// nothing. Read them, never modify them. While the container runtime is
// unreachable each is a copy marked stale.
func (m *Manager) ListShared(ctx context.Context) ([]*Service, error) {
	all, err := m.shared(ctx)
	if err != nil {
		return nil, err
	}
	if m.dockerDown.Load() {
		for i, p := range all {
			s := *p
			s.Stale = true
			all[i] = &s
		}
	}
	return all, nil
}

// transition moves a service to a new status, validated against the table,
// persists it with its reason and time, then publishes the status event.
// alsoSet, when given, sets other fields in the same atomic update. A move to
// failed goes through fail, which records the failure kind (and the
// restart plan its next_restart_at); leaving failed clears both.
func (m *Manager) transition(ctx context.Context, id string, to Status, reason string, alsoSet func(*Service)) (Service, error) {
	var from Status
	s, err := m.col.Update(ctx, id, func(s *Service) error {
		from = s.Status
		if err := CheckTransition(s.Status, to); err != nil {
			return errs.New(errs.Conflict, "service %s: %v", id, err)
		}
		s.Status = to
		s.Reason = reason
		// Facts of the failed status: fail (and the restart plan) set
		// them again in alsoSet.
		s.Failure, s.EngineError, s.NextRestartAt = "", "", nil
		s.UpdatedAt = m.now().UTC()
		releaseLeaseOnEnd(s)
		if alsoSet != nil {
			alsoSet(s)
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	m.transitioned(Transition{From: from, Service: s})
	msg := fmt.Sprintf("%s → %s", from, to)
	if reason != "" {
		msg += ": " + reason
	}
	m.bus.Publish(events.Event{ServiceID: id, Run: s.Run, Type: events.TypeStatus, Status: string(to), Phase: string(s.Phase), Failure: string(s.Failure), Message: msg})
	return s, nil
}

// fail moves a service to failed with the failure's facts: its kind,
// reason, exit code, OOM flag and last log lines. alsoSet, when given, sets
// other fields in the same update.
func (m *Manager) fail(ctx context.Context, id string, f failure, alsoSet func(*Service)) (Service, error) {
	return m.transition(ctx, id, StatusFailed, f.reason, func(x *Service) {
		x.Failure, x.EngineError = f.kind, f.engineLine
		x.ExitCode, x.OOMKilled, x.LogTail, x.DeadlineAt = f.exitCode, f.oom, f.logTail, nil
		if alsoSet != nil {
			alsoSet(x)
		}
	})
}

// enterPhase records the phase in the service record and publishes it.
func (m *Manager) enterPhase(ctx context.Context, id string, run int, p Phase, msg string) error {
	_, err := m.col.Update(ctx, id, func(s *Service) error {
		if s.Status != StatusCreating || s.Run != run {
			return errs.New(errs.Conflict, "service %s is no longer starting", id)
		}
		s.Phase = p
		s.UpdatedAt = m.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	m.bus.Publish(events.Event{ServiceID: id, Run: run, Type: events.TypePhase, Status: string(StatusCreating), Phase: string(p), Message: msg})
	return nil
}

// message publishes a step inside the current phase.
func (m *Manager) message(id string, run int, p Phase, msg string) {
	m.bus.Publish(events.Event{ServiceID: id, Run: run, Type: events.TypeMessage, Status: string(StatusCreating), Phase: string(p), Message: msg})
}

// deleted publishes a service's last event: its record and history are
// gone (the event is not journaled).
func (m *Manager) deleted(id string, run int) {
	m.bus.Publish(events.Event{ServiceID: id, Run: run, Type: events.TypeDeleted, Message: "deleted"})
}
