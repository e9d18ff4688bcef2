package services

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"aima/errs"
	"aima/runtime"
	"aima/runtime/fakeruntime"
	"aima/state"
)

// Unit tests of how the manager lives with a damaged store: a record that
// does not decode, a store that fails, containers of another store.

// failingStore fails every listing of service records, as a store with a
// bad disk would.
type failingStore struct{ state.Store }

func (s failingStore) List(ctx context.Context, prefix string) ([]state.Entry, error) {
	if strings.HasPrefix(prefix, "services/") {
		return nil, errs.New(errs.Unavailable, "state store: input/output error")
	}
	return s.Store.List(ctx, prefix)
}

// putService stores a service record as the manager would.
func putService(t *testing.T, store state.Store, s Service) {
	t.Helper()
	if err := state.NewCollection[Service](store, "services/", "service").Put(t.Context(), s.ID, s); err != nil {
		t.Fatal(err)
	}
}

// runContainer creates and starts a container on the fake runtime with
// the given labels, publishing port (0: none), whose engine never becomes
// healthy; it returns its ID.
func runContainer(t *testing.T, fr *fakeruntime.Runtime, name string, port int, labels map[string]string) string {
	t.Helper()
	fr.SetScript(labels, fakeruntime.Script{})
	spec := runtime.ContainerSpec{Name: name, Image: engineImage, Labels: labels}
	if port != 0 {
		spec.ContainerPort, spec.HostIP, spec.HostPort = 8000, "127.0.0.1", port
	}
	id, err := fr.CreateContainer(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := fr.StartContainer(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	return id
}

func serviceLabels(id string) map[string]string {
	return map[string]string{runtime.LabelManaged: "true", runtime.LabelService: id}
}

// One service record replaced by `{not json`: start-up reconciles the rest
// and does not call Docker down (no stale statuses), the liveness probe
// keeps probing, list/status by name/create/orphans work, and the damaged
// record is listed and deletable with its containers.
func TestDamagedRecordIsQuarantined(t *testing.T) {
	t.Parallel()
	store := state.NewMemory()
	h := newHarnessOn(t, store, func(o *Options) { o.UnhealthyGrace = time.Hour })
	ctx := h.ctx()
	port := loopbackPort(t)
	live := runContainer(t, h.fr, "live", port, serviceLabels("svc-live"))
	runContainer(t, h.fr, "bad", 0, serviceLabels("svc-bad"))
	putService(t, store, Service{ID: "svc-live", Name: "live", EngineType: "vllm", Status: StatusRunning, Port: port, ContainerID: live, Run: 1})
	if _, err := store.Put(ctx, "services/svc-bad", []byte("{not json"), state.AnyRev); err != nil {
		t.Fatal(err)
	}
	m := h.m
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
	h.awaitStatus("svc-live", StatusUnhealthy)
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
	sh, err := m.StoreHealth(ctx, nil)
	if err != nil || len(sh.Damaged) != 1 || len(sh.Warnings) != 1 || !strings.Contains(sh.Warnings[0], "aima service delete svc-bad") {
		t.Fatalf("StoreHealth = %+v, %v", sh, err)
	}
	if _, err := m.Create(ctx, CreateSpec{ModelID: "org/tiny", EngineType: "vllm", Port: loopbackPort(t)}); err != nil {
		t.Fatalf("create beside a damaged record: %v", err)
	}
	if s, err := m.Delete(ctx, "svc-bad"); err != nil || s.ID != "svc-bad" {
		t.Fatalf("Delete(damaged) = %+v, %v", s, err)
	}
	if c := h.fr.Containers(serviceLabels("svc-bad")); len(c) != 0 {
		t.Fatalf("containers of the damaged record after delete: %+v", c)
	}
	if d, _ := m.Damaged(ctx); len(d) != 0 {
		t.Fatalf("still damaged after delete: %+v", d)
	}
}

// A failing store is the store's problem: Docker stays reachable and no
// status is marked stale. Only the runtime being unreachable is Docker down.
func TestOnlyRuntimeUnavailableMeansDockerDown(t *testing.T) {
	t.Parallel()
	base := state.NewMemory()
	putService(t, base, Service{ID: "svc-a", Name: "a", EngineType: "vllm", Status: StatusCreated})
	failing := newHarnessOn(t, failingStore{base}, nil)
	if err := failing.m.Run(); err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("Run = %v, want the store's error", err)
	}
	if !failing.m.DockerReachable() {
		t.Fatal("a store error marked Docker unreachable")
	}
	if s, err := newHarnessOn(t, base, nil).m.Get(t.Context(), "svc-a"); err != nil || s.Stale {
		t.Fatalf("Get = %+v, %v", s, err)
	}

	down := newHarnessOn(t, base, nil)
	down.fr.Inject(fakeruntime.OpList, fakeruntime.Fault{Err: errs.New(errs.Unavailable, "docker engine unavailable: connection refused")})
	if err := down.m.Run(); err == nil {
		t.Fatal("Run with Docker down = nil")
	}
	if down.m.DockerReachable() {
		t.Fatal("Docker unreachable not noticed")
	}
	if s, err := down.m.Get(t.Context(), "svc-a"); err != nil || !s.Stale {
		t.Fatalf("Get with Docker down = %+v, %v: want stale", s, err)
	}
}

// Orphans this store did not create (another store's label, or none) are
// marked and kept by Prune unless forced; this store's own orphans go.
func TestPruneKeepsOtherStoresContainers(t *testing.T) {
	t.Parallel()
	store := state.NewMemory()
	h := newHarnessOn(t, store, nil)
	ctx := h.ctx()
	id, err := state.StoreID(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	label := func(svc, st string) map[string]string {
		l := serviceLabels(svc)
		if st != "" {
			l[runtime.LabelStore] = st
		}
		return l
	}
	ids := map[string]string{} // container ID → name
	for i, c := range []struct{ name, store string }{{"aima-svc-mine-r1", id}, {"aima-svc-lost-r1", "0123456789ab"}, {"aima-svc-old-r1", ""}} {
		ids[runContainer(t, h.fr, c.name, 0, label("svc-"+strconv.Itoa(i), c.store))] = c.name
	}
	orphans, err := h.m.Orphans(ctx)
	if err != nil || len(orphans) != 3 {
		t.Fatalf("Orphans = %+v, %v", orphans, err)
	}
	for _, o := range orphans {
		if o.OtherStore != (ids[o.ContainerID] != "aima-svc-mine-r1") {
			t.Errorf("orphan %s: other_store %v", ids[o.ContainerID], o.OtherStore)
		}
	}
	sh, err := h.m.StoreHealth(ctx, orphans)
	if err != nil || len(sh.Warnings) != 1 || !strings.Contains(sh.Warnings[0], "2 container(s)") || !strings.Contains(sh.Warnings[0], "--force") {
		t.Fatalf("StoreHealth = %+v, %v", sh, err)
	}
	res, err := h.m.Prune(ctx, false)
	if err != nil || len(res.Removed) != 1 || ids[res.Removed[0].ContainerID] != "aima-svc-mine-r1" || len(res.Kept) != 2 {
		t.Fatalf("Prune = %+v, %v: want this store's container removed, the other store's kept", res, err)
	}
	res, err = h.m.Prune(ctx, true)
	if err != nil || len(res.Removed) != 2 || len(res.Kept) != 0 {
		t.Fatalf("Prune(force) = %+v, %v", res, err)
	}
}
