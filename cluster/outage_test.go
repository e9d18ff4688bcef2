package cluster_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aima/errs"
	"aima/internal/testenv"
	"aima/internal/testenv/kube"
)

// longLease outlasts the outages below (the API server down for seconds,
// etcd for 30 s, a renewal stuck in the API server for its minute): these
// tests are of reconnection, not of a takeover. With the default lease
// (8 s) such an outage deposes the leader (it exits; see
// docs/reliability.md).
const longLease = "    lease_duration: 120s\n    renew_deadline: 90s\n    retry_period: 1s\n"

// lease returns the leader Lease's holder and last renewal.
func (e *env) lease(t *testing.T) (string, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := e.c.Client.CoordinationV1().Leases(e.ns).Get(ctx, "aima-leader", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var holder string
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	var renewed time.Time
	if l.Spec.RenewTime != nil {
		renewed = l.Spec.RenewTime.Time
	}
	return holder, renewed
}

// waitRenewedAfter waits until the Lease, still held by holder, was
// renewed after t0.
func (e *env) waitRenewedAfter(t *testing.T, holder string, t0 time.Time) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		h, renewed := e.lease(t)
		if h != holder {
			t.Fatalf("the lease passed from %q to %q", holder, h)
		}
		if renewed.After(t0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease was last renewed at %s, before %s", renewed, t0)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// podUIDs is every service's engine Pods.
func (e *env) podUIDs(t *testing.T, ids []string) map[string][]string {
	t.Helper()
	m := map[string][]string{}
	for _, id := range ids {
		m[id] = uids(e.pods(t, id))
	}
	return m
}

// waitStatus waits until the leader d says service id is status.
func waitStatus(t testing.TB, d interface {
	Get(string) (int, []byte, error)
}, id, status string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body, err := d.Get("/api/service/status?service_id=" + id)
		var s struct{ Status string }
		if err == nil && code == http.StatusOK && json.Unmarshal(body, &s) == nil && s.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: %d %s %v, want status %s", id, code, body, err, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkAfter checks, after an outage, that nothing was lost or doubled
// and that the leader acts on old and new services alike: every service
// of before is listed, the running ones with the Pods they had (none
// started again), a new service starts (a store write, a Pod created and
// seen by the runtime's watch), and stopping an old one ends its Pod.
// Then the leader steps down (SIGTERM releases the lease) and the
// follower, whose store watched through the outage, leads with every
// record and the same Pods.
func (e *env) checkAfter(t *testing.T, before map[string]string, running []string, podsBefore map[string][]string) {
	t.Helper()
	now := services(t, e.a)
	for id := range before {
		if _, ok := now[id]; !ok {
			t.Errorf("service %s lost in the outage", id)
		}
	}
	if got := e.podUIDs(t, running); !maps.EqualFunc(got, podsBefore, slices.Equal) {
		t.Fatalf("Pods after the outage %v, want %v (none started again, none lost)", got, podsBefore)
	}
	added := e.startServices(t, e.a, 1)[0]
	post(t, e.a, "/api/service/stop", map[string]any{"service_id": running[0]})
	e.waitStopped(t, running[0])
	waitStatus(t, e.a, running[0], "stopped")
	want := services(t, e.a)
	if _, ok := want[added]; !ok {
		t.Fatalf("the service started after the outage is not listed: %v", want)
	}
	e.a.Term(t, time.Minute)
	waitReady(t, e.b)
	if got := services(t, e.b); !maps.Equal(got, want) {
		t.Fatalf("the follower leads with %v, the leader had %v", got, want)
	}
	for _, id := range running[1:] {
		if got := uids(e.pods(t, id)); !slices.Equal(got, podsBefore[id]) {
			t.Fatalf("service %s: Pods %v after the handover, want %v", id, got, podsBefore[id])
		}
	}
}

// create asks d to create a service and returns the HTTP status and the
// error's kind (none on success).
func create(t *testing.T, d *testenv.DaemonProc) (int, errs.Kind) {
	t.Helper()
	code, body, err := d.Post("/api/service/create", map[string]any{"model_id": "org/name", "engine_type": "vllm"})
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Error struct{ Code errs.Kind } }
	_ = json.Unmarshal(body, &out)
	if code != http.StatusOK {
		t.Logf("create: %d %s", code, body)
	}
	return code, out.Error.Code
}

// The API server restarts (etcd and its data kept) while services run:
// the leader keeps its lease (renewed again once the API server is back),
// its runtime's watches and its store's watch reconnect, nothing is lost
// or started twice, and it acts again.
func TestAPIServerRestartWhileServicesRun(t *testing.T) {
	c := kube.Own(t)
	e := newEnvOn(t, c, longLease)
	ids := e.startServices(t, e.a, 3)
	before := services(t, e.a)
	podsBefore := e.podUIDs(t, ids)
	holder, _ := e.lease(t)

	if err := c.StopComponent(kube.APIServer); err != nil {
		t.Fatal(err)
	}
	// With the API server down, reads are served from memory and writes
	// refused.
	if got := services(t, e.a); !maps.Equal(got, before) {
		t.Fatalf("with the API server down the leader lists %v, want %v", got, before)
	}
	if code, kind := create(t, e.a); code != http.StatusServiceUnavailable || kind != errs.Unavailable {
		t.Fatalf("service create with the API server down: %d %s, want 503 and kind unavailable", code, kind)
	}
	if err := c.StartComponent(context.Background(), kube.APIServer); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	e.waitRenewedAfter(t, holder, back)
	t.Logf("lease renewed %s after the API server was ready again", time.Since(back).Round(time.Millisecond))
	if !ready(e.a) || ready(e.b) {
		t.Fatalf("after the restart: leader ready %v, follower ready %v", ready(e.a), ready(e.b))
	}
	e.checkAfter(t, before, ids, podsBefore)
}

// etcd stops for 30 s while services run: the API server answers but can
// neither read nor write. The leader serves reads (service list) from its
// store's cache, unchanged, and refuses writes (service create) with kind
// unavailable; once etcd is back, writes work, nothing was lost, and a
// refused create left no record behind.
func TestEtcdStoppedWhileServicesRun(t *testing.T) {
	c := kube.Own(t)
	e := newEnvOn(t, c, longLease)
	ids := e.startServices(t, e.a, 2)
	before := services(t, e.a)
	podsBefore := e.podUIDs(t, ids)

	if err := c.StopComponent(kube.Etcd); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	refused := 0
	for time.Since(stopped) < 30*time.Second {
		if got := services(t, e.a); !maps.Equal(got, before) {
			t.Fatalf("with etcd down the leader lists %v, want %v", got, before)
		}
		t0 := time.Now()
		if code, kind := create(t, e.a); code != http.StatusServiceUnavailable || kind != errs.Unavailable {
			t.Fatalf("service create with etcd down: %d %s, want 503 and kind unavailable", code, kind)
		}
		refused++
		t.Logf("create refused after %s", time.Since(t0).Round(time.Millisecond))
	}
	if err := c.StartComponent(context.Background(), kube.Etcd); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for {
		code, body, err := e.a.Post("/api/service/create", map[string]any{"model_id": "org/name", "engine_type": "vllm"})
		if err == nil && code == http.StatusOK {
			var out struct{ ID string }
			_ = json.Unmarshal(body, &out)
			before[out.ID] = "created"
			t.Logf("created %s", out.ID)
			break
		}
		if time.Since(back) > 2*time.Minute {
			t.Fatalf("service create still refused %s after etcd came back: %d %s %v", time.Since(back), code, body, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d creates refused during the outage; the first after etcd came back succeeded after %s", refused, time.Since(back).Round(time.Millisecond))
	if got := services(t, e.a); len(got) != len(before) {
		t.Fatalf("after the outage the leader lists %v, want the services of %v (a refused create leaves nothing)", got, before)
	}
	e.checkAfter(t, before, ids, podsBefore)
}
