package kubestore_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"aima/errs"
	"aima/internal/testenv/kube"
	"aima/state"
	"aima/state/kubestore"
	"aima/state/statetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kube.StopShared()
	os.Exit(code)
}

// open opens a store in ns on the shared cluster, closed when the test
// ends.
func open(t testing.TB, c *kube.Cluster, ns string) *kubestore.Store {
	t.Helper()
	s, err := kubestore.Open(context.Background(), kubestore.Options{Rest: c.Rest, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The Store conformance suite, on the real API server.
func TestConformance(t *testing.T) {
	c := kube.Shared(t)
	c.InstallCRDs(t)
	statetest.Run(t, func(t *testing.T) state.Store { return open(t, c, c.Namespace(t)) })
}

// Two stores on the same records (two daemons): each sees the other's
// writes through the watch, and a write based on a stale read is a
// conflict, never a silent overwrite.
func TestTwoStores(t *testing.T) {
	c := kube.Shared(t)
	c.InstallCRDs(t)
	ns := c.Namespace(t)
	a, b := open(t, c, ns), open(t, c, ns)
	ctx := context.Background()
	r1, err := a.Put(ctx, "services/svc-1", []byte(`{"id":"svc-1"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	e := waitFor(t, b, "services/svc-1", r1)
	if string(e.Value) != `{"id":"svc-1"}` {
		t.Fatalf("b reads %q", e.Value)
	}
	r2, err := b.Put(ctx, "services/svc-1", []byte(`{"id":"svc-1","v":2}`), r1)
	if err != nil {
		t.Fatal(err)
	}
	// a still holds r1: its write is refused, and its next read is fresh.
	if _, err := a.Put(ctx, "services/svc-1", []byte(`{"id":"svc-1","v":"lost"}`), r1); !errors.Is(err, state.ErrConflict) || errs.KindOf(err) != errs.Conflict {
		t.Fatalf("stale write: %v, want a conflict", err)
	}
	if e, _, _ := a.Get(ctx, "services/svc-1"); e.Rev != r2 {
		t.Fatalf("after the conflict a reads rev %d, want %d", e.Rev, r2)
	}
	// Updates from both sides, interleaved, lose nothing.
	for i := range 10 {
		s := []*kubestore.Store{a, b}[i%2]
		if _, err := state.Update(ctx, s, "counter", func(old []byte, exists bool) ([]byte, error) {
			return append(old, 'x'), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// b wrote last: it reads its write; a sees it once the watch tells.
	e, _, _ = b.Get(ctx, "counter")
	if string(e.Value) != "xxxxxxxxxx" {
		t.Fatalf("counter = %q", e.Value)
	}
	if got := waitFor(t, a, "counter", e.Rev); string(got.Value) != "xxxxxxxxxx" {
		t.Fatalf("a reads counter = %q", got.Value)
	}
	// A delete reaches the other store.
	if err := a.Delete(ctx, "services/svc-1", r2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok, _ := b.Get(ctx, "services/svc-1"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b still has the deleted record")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor waits until s's cache has key at rev or later.
func waitFor(t *testing.T, s *kubestore.Store, key string, rev uint64) state.Entry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		e, ok, err := s.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if ok && e.Rev >= rev {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at rev %d never reached the other store", key, rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Open says what to do when the CRD is missing or the rights are.
func TestOpenErrors(t *testing.T) {
	c := kube.Shared(t)
	c.InstallCRDs(t)
	limited := *c.Rest
	limited.BearerToken = kube.LimitedToken
	_, err := kubestore.Open(context.Background(), kubestore.Options{Rest: &limited, Namespace: c.Namespace(t)})
	if errs.KindOf(err) != errs.PermissionDenied {
		t.Fatalf("open without rights: %v, want permission_denied", err)
	}
}

// Resync brings in what the API server has even before the watch tells.
func TestResync(t *testing.T) {
	c := kube.Shared(t)
	c.InstallCRDs(t)
	ns := c.Namespace(t)
	a, b := open(t, c, ns), open(t, c, ns)
	ctx := context.Background()
	r, err := a.Put(ctx, "models/m", []byte(`{"id":"m"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	if e, ok, _ := b.Get(ctx, "models/m"); !ok || e.Rev < r {
		t.Fatalf("after Resync b reads %+v %v, want rev %d", e, ok, r)
	}
	if err := a.Delete(ctx, "models/m", r); err != nil {
		t.Fatal(err)
	}
	if err := b.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Get(ctx, "models/m"); ok {
		t.Fatal("after Resync b still reads a deleted record")
	}
}
