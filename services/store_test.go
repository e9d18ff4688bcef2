package services

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/engines"
	"aima/errs"
	"aima/events"
	"aima/models"
	"aima/runtime"
	"aima/state"
)

// Unit tests of how the manager lives with a damaged store: a record that
// does not decode, a store that fails, containers of another store. The
// runtime is stubRuntime: only what reconcile, the watcher, liveness, delete
// and prune call.

// waitGuard bounds every wait: a guard against a hang, not a timing claim.
const waitGuard = 20 * time.Second

// stubRuntime lists a fixed set of containers (or fails with listErr), keeps
// its event stream open until the watcher ends, and records removals. The
// embedded interface is nil: any other call panics, so a test notices.
type stubRuntime struct {
	runtime.Runtime
	mu         sync.Mutex
	containers []runtime.ContainerState
	listErr    error
	removed    []string
}

func (r *stubRuntime) ListContainers(_ context.Context, labels map[string]string) ([]runtime.ContainerState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.listErr != nil {
		return nil, r.listErr
	}
	var out []runtime.ContainerState
	for _, c := range r.containers {
		match := true
		for k, v := range labels {
			match = match && c.Labels[k] == v
		}
		if match {
			out = append(out, c)
		}
	}
	return out, nil
}

func (r *stubRuntime) Events(ctx context.Context, _ time.Time, _ map[string]string) (<-chan runtime.Event, <-chan error) {
	evs, errc := make(chan runtime.Event), make(chan error, 1)
	go func() { <-ctx.Done(); errc <- ctx.Err() }()
	return evs, errc
}

func (r *stubRuntime) RemoveContainer(_ context.Context, id string, _ bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = append(r.removed, id)
	kept := r.containers[:0]
	for _, c := range r.containers {
		if c.ID != id {
			kept = append(kept, c)
		}
	}
	r.containers = kept
	return nil
}

// failingStore fails every listing of service records, as a store with a
// bad disk would.
type failingStore struct{ state.Store }

func (s failingStore) List(ctx context.Context, prefix string) ([]state.Entry, error) {
	if strings.HasPrefix(prefix, "services/") {
		return nil, errs.New(errs.Unavailable, "state store: input/output error")
	}
	return s.Store.List(ctx, prefix)
}

func newStoreTestManager(t *testing.T, store state.Store, rt runtime.Runtime, port int) *Manager {
	t.Helper()
	catalog, err := engines.NewCatalog(map[string]engines.Override{"vllm": {Image: "fake/vllm:1", GPUs: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, rt, events.NewBus(events.WithJournal(NewJournal(store))), catalog, models.NewRegistry(store), Options{
		LivenessInterval: 10 * time.Millisecond, UnhealthyGrace: time.Hour, PortLow: port, PortHigh: port + 10,
		Logger: slog.New(slog.DiscardHandler),
	})
	t.Cleanup(m.Close)
	return m
}

// putService stores a service record as the manager would.
func putService(t *testing.T, store state.Store, s Service) {
	t.Helper()
	if err := state.NewCollection[Service](store, "services/", "service").Put(t.Context(), s.ID, s); err != nil {
		t.Fatal(err)
	}
}

func awaitTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %s", what, waitGuard)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// One service record replaced by `{not json`: start-up reconciles the rest
// and does not call Docker down (no stale statuses), the liveness probe
// keeps probing, list/status by name/create/orphans work, and the damaged
// record is listed and deletable with its containers.
func TestDamagedRecordIsQuarantined(t *testing.T) {
	ctx := t.Context()
	store := state.NewMemory()
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer health.Close()
	_, portStr, _ := net.SplitHostPort(strings.TrimPrefix(health.URL, "http://"))
	port, _ := strconv.Atoi(portStr)
	putService(t, store, Service{ID: "svc-live", Name: "live", EngineType: "vllm", Status: StatusRunning, Port: port, ContainerID: "c-live", Run: 1})
	if _, err := store.Put(ctx, "services/svc-bad", []byte("{not json"), state.AnyRev); err != nil {
		t.Fatal(err)
	}
	rt := &stubRuntime{containers: []runtime.ContainerState{
		{ID: "c-live", Running: true, Status: "running", Labels: map[string]string{runtime.LabelManaged: "true", runtime.LabelService: "svc-live"}},
		{ID: "c-bad", Running: true, Status: "running", Labels: map[string]string{runtime.LabelManaged: "true", runtime.LabelService: "svc-bad"}},
	}}
	m := newStoreTestManager(t, store, rt, port+100)
	if err := m.Run(); err != nil {
		t.Fatalf("Run with a damaged record: %v", err)
	}
	if !m.DockerReachable() {
		t.Fatal("a damaged record made the manager call Docker unreachable")
	}
	if s, err := m.Get(ctx, "live"); err != nil || s.Stale || s.Status != StatusRunning {
		t.Fatalf("status by name = %+v, %v: want running, not stale", s, err)
	}
	// The liveness loop still probes: the failing health endpoint makes the
	// running service unhealthy.
	awaitTrue(t, "unhealthy by the liveness probe", func() bool {
		s, err := m.Get(ctx, "svc-live")
		return err == nil && s.Status == StatusUnhealthy
	})
	list, err := m.List(ctx, "")
	if err != nil || len(list) != 1 || list[0].ID != "svc-live" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	damaged, err := m.Damaged(ctx)
	if err != nil || len(damaged) != 1 || damaged[0].ID != "svc-bad" {
		t.Fatalf("Damaged = %+v, %v", damaged, err)
	}
	if _, err := m.Get(ctx, "svc-bad"); errs.KindOf(err) != errs.Conflict || !state.IsDamaged(err) {
		t.Fatalf("status of the damaged record = %v, want a conflict saying it is damaged", err)
	}
	if orphans, err := m.Orphans(ctx); err != nil || len(orphans) != 0 {
		t.Fatalf("Orphans = %+v, %v: a damaged record's container is not an orphan", orphans, err)
	}
	h, err := m.StoreHealth(ctx, nil)
	if err != nil || len(h.Damaged) != 1 || len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], "aima service delete svc-bad") {
		t.Fatalf("StoreHealth = %+v, %v", h, err)
	}
	if _, err := m.Create(ctx, CreateSpec{ModelID: "org/tiny", EngineType: "vllm"}); err != nil {
		t.Fatalf("create beside a damaged record: %v", err)
	}
	if s, err := m.Delete(ctx, "svc-bad"); err != nil || s.ID != "svc-bad" {
		t.Fatalf("Delete(damaged) = %+v, %v", s, err)
	}
	if rt.removed == nil || rt.removed[0] != "c-bad" {
		t.Fatalf("removed containers %v, want the damaged record's c-bad", rt.removed)
	}
	if d, _ := m.Damaged(ctx); len(d) != 0 {
		t.Fatalf("still damaged after delete: %+v", d)
	}
}

// A failing store is the store's problem: Docker stays reachable and no
// status is marked stale. Only the runtime being unreachable is Docker down.
func TestOnlyRuntimeUnavailableMeansDockerDown(t *testing.T) {
	ctx := t.Context()
	base := state.NewMemory()
	putService(t, base, Service{ID: "svc-a", Name: "a", EngineType: "vllm", Status: StatusCreated})
	m := newStoreTestManager(t, failingStore{base}, &stubRuntime{}, 30000)
	if err := m.Run(); err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("Run = %v, want the store's error", err)
	}
	if !m.DockerReachable() {
		t.Fatal("a store error marked Docker unreachable")
	}
	if s, err := newStoreTestManager(t, base, &stubRuntime{}, 30000).Get(ctx, "svc-a"); err != nil || s.Stale {
		t.Fatalf("Get = %+v, %v", s, err)
	}

	down := &stubRuntime{listErr: errs.New(errs.Unavailable, "docker engine unavailable: connection refused")}
	m2 := newStoreTestManager(t, base, down, 30000)
	if err := m2.Run(); err == nil {
		t.Fatal("Run with Docker down = nil")
	}
	if m2.DockerReachable() {
		t.Fatal("Docker unreachable not noticed")
	}
	if s, err := m2.Get(ctx, "svc-a"); err != nil || !s.Stale {
		t.Fatalf("Get with Docker down = %+v, %v: want stale", s, err)
	}
}

// Orphans this store did not create (another store's label, or none) are
// marked and kept by Prune unless forced; this store's own orphans go.
func TestPruneKeepsOtherStoresContainers(t *testing.T) {
	ctx := t.Context()
	store := state.NewMemory()
	id, err := state.StoreID(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	label := func(svc, st string) map[string]string {
		l := map[string]string{runtime.LabelManaged: "true", runtime.LabelService: svc}
		if st != "" {
			l[runtime.LabelStore] = st
		}
		return l
	}
	rt := &stubRuntime{containers: []runtime.ContainerState{
		{ID: "c-mine", Name: "aima-svc-mine-r1", Labels: label("svc-mine", id)},
		{ID: "c-lost", Name: "aima-svc-lost-r1", Labels: label("svc-lost", "0123456789ab")},
		{ID: "c-old", Name: "aima-svc-old-r1", Labels: label("svc-old", "")},
	}}
	m := newStoreTestManager(t, store, rt, 30000)
	orphans, err := m.Orphans(ctx)
	if err != nil || len(orphans) != 3 {
		t.Fatalf("Orphans = %+v, %v", orphans, err)
	}
	for _, o := range orphans {
		if o.OtherStore != (o.ContainerID != "c-mine") {
			t.Errorf("orphan %s: other_store %v", o.ContainerID, o.OtherStore)
		}
	}
	h, err := m.StoreHealth(ctx, orphans)
	if err != nil || len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], "2 container(s)") || !strings.Contains(h.Warnings[0], "--force") {
		t.Fatalf("StoreHealth = %+v, %v", h, err)
	}
	res, err := m.Prune(ctx, false)
	if err != nil || len(res.Removed) != 1 || res.Removed[0].ContainerID != "c-mine" || len(res.Kept) != 2 {
		t.Fatalf("Prune = %+v, %v: want c-mine removed, the other store's kept", res, err)
	}
	res, err = m.Prune(ctx, true)
	if err != nil || len(res.Removed) != 2 || len(res.Kept) != 0 {
		t.Fatalf("Prune(force) = %+v, %v", res, err)
	}
}
