package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/philippgille/gokv/syncmap"

	"aima/errs"
)

// backend opens a fresh, empty store for one test; the store is closed by
// t.Cleanup (Close is idempotent, so tests may close it themselves too).
type backend struct {
	name string
	open func(t *testing.T) Store
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) Store { return NewMemory() }},
		{"bolt", func(t *testing.T) Store {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "sub", "aima.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"gokv-syncmap", func(t *testing.T) Store {
			return NewGokv(syncmap.NewStore(syncmap.DefaultOptions))
		}},
		{"gokv-file", func(t *testing.T) Store {
			s, err := Open(BackendGokvFile, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
}

// forEachBackend runs f as a subtest against every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, s Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			f(t, s)
		})
	}
}

func mustPut(t *testing.T, s Store, key, val string, expectRev uint64) uint64 {
	t.Helper()
	rev, err := s.Put(context.Background(), key, []byte(val), expectRev)
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	if rev == 0 || rev == AnyRev {
		t.Fatalf("put %q: bad rev %d", key, rev)
	}
	return rev
}

func mustGet(t *testing.T, s Store, key string) (Entry, bool) {
	t.Helper()
	e, ok, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return e, ok
}

func wantConflict(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, ErrConflict) || errs.KindOf(err) != errs.Conflict {
		t.Fatalf("%s: want conflict, got %v (kind %q)", what, err, errs.KindOf(err))
	}
}

func TestConformanceGetPut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if _, ok := mustGet(t, s, "a"); ok {
			t.Fatal("fresh store has key a")
		}
		r1 := mustPut(t, s, "a", "one", AnyRev)
		e, ok := mustGet(t, s, "a")
		if !ok || e.Key != "a" || string(e.Value) != "one" || e.Rev != r1 {
			t.Fatalf("get a = %+v %v, want one@%d", e, ok, r1)
		}
		// Stale revision: refused, nothing written.
		_, err := s.Put(ctx, "a", []byte("bad"), r1+1000)
		wantConflict(t, err, "put stale rev")
		r2 := mustPut(t, s, "a", "two", r1)
		if r2 <= r1 {
			t.Fatalf("rev did not increase: %d -> %d", r1, r2)
		}
		_, err = s.Put(ctx, "a", []byte("bad"), r1)
		wantConflict(t, err, "put old rev")
		if e, _ := mustGet(t, s, "a"); string(e.Value) != "two" || e.Rev != r2 {
			t.Fatalf("get a = %+v, want two@%d", e, r2)
		}
		// Unconditional put.
		r3 := mustPut(t, s, "a", "three", AnyRev)
		if r3 <= r2 {
			t.Fatalf("rev did not increase: %d -> %d", r2, r3)
		}
	})
}

func TestConformanceCreateIfAbsent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustPut(t, s, "x", "first", 0)
		_, err := s.Put(ctx, "x", []byte("second"), 0)
		wantConflict(t, err, "put expectRev 0 on existing key")
		if _, err := Create(ctx, s, "y", []byte("y")); err != nil {
			t.Fatalf("create y: %v", err)
		}
		_, err = Create(ctx, s, "y", []byte("again"))
		wantConflict(t, err, "create existing")
		if e, _ := mustGet(t, s, "y"); string(e.Value) != "y" {
			t.Fatalf("y overwritten: %q", e.Value)
		}
		if e, _ := mustGet(t, s, "x"); string(e.Value) != "first" {
			t.Fatalf("x overwritten: %q", e.Value)
		}
	})
}

func TestConformanceListPrefixOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for _, k := range []string{"b/2", "a/1", "b/10", "c", "b/1", "b", "ba", "b/1/x"} {
			mustPut(t, s, k, "v-"+k, AnyRev)
		}
		keys := func(prefix string) []string {
			t.Helper()
			es, err := s.List(ctx, prefix)
			if err != nil {
				t.Fatalf("list %q: %v", prefix, err)
			}
			var out []string
			for _, e := range es {
				if string(e.Value) != "v-"+e.Key || e.Rev == 0 {
					t.Fatalf("list %q: bad entry %+v", prefix, e)
				}
				out = append(out, e.Key)
			}
			return out
		}
		if got, want := keys("b/"), []string{"b/1", "b/1/x", "b/10", "b/2"}; !slices.Equal(got, want) {
			t.Fatalf("list b/ = %q, want %q", got, want)
		}
		if got, want := keys(""), []string{"a/1", "b", "b/1", "b/1/x", "b/10", "b/2", "ba", "c"}; !slices.Equal(got, want) {
			t.Fatalf("list all = %q, want %q", got, want)
		}
		if got := keys("zzz"); len(got) != 0 {
			t.Fatalf("list zzz = %q, want none", got)
		}
		if got, want := keys("c"), []string{"c"}; !slices.Equal(got, want) {
			t.Fatalf("list c = %q, want %q", got, want)
		}
	})
}

func TestConformanceDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		r := mustPut(t, s, "d", "v", AnyRev)
		wantConflict(t, s.Delete(ctx, "d", r+1000), "delete stale rev")
		if _, ok := mustGet(t, s, "d"); !ok {
			t.Fatal("conflicting delete removed the key")
		}
		if err := s.Delete(ctx, "d", r); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, ok := mustGet(t, s, "d"); ok {
			t.Fatal("deleted key still present")
		}
		if es, _ := s.List(ctx, ""); len(es) != 0 {
			t.Fatalf("list after delete = %+v", es)
		}
		// Absent key: no-op for AnyRev and 0, conflict otherwise.
		if err := s.Delete(ctx, "d", AnyRev); err != nil {
			t.Fatalf("delete absent AnyRev: %v", err)
		}
		if err := s.Delete(ctx, "d", 0); err != nil {
			t.Fatalf("delete absent 0: %v", err)
		}
		wantConflict(t, s.Delete(ctx, "d", r), "delete absent with rev")
		// Unconditional delete of a present key.
		mustPut(t, s, "e", "v", AnyRev)
		if err := s.Delete(ctx, "e", AnyRev); err != nil {
			t.Fatalf("delete AnyRev: %v", err)
		}
		if _, ok := mustGet(t, s, "e"); ok {
			t.Fatal("e still present")
		}
	})
}

// TestConformanceNoRevReuse: a key deleted and re-created gets a new
// revision, so a writer holding the old one cannot clobber the new value.
func TestConformanceNoRevReuse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		r1 := mustPut(t, s, "k", "old", 0)
		if err := s.Delete(ctx, "k", r1); err != nil {
			t.Fatal(err)
		}
		r2 := mustPut(t, s, "k", "new", 0)
		if r2 == r1 {
			t.Fatalf("revision %d reused", r1)
		}
		_, err := s.Put(ctx, "k", []byte("stale"), r1)
		wantConflict(t, err, "put with pre-delete rev")
	})
}

func TestConformanceCopiesAndEmptyValues(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		in := []byte("hello")
		if _, err := s.Put(ctx, "c", in, AnyRev); err != nil {
			t.Fatal(err)
		}
		in[0] = 'X'
		e, _ := mustGet(t, s, "c")
		if string(e.Value) != "hello" {
			t.Fatalf("store aliases input: %q", e.Value)
		}
		e.Value[0] = 'Y'
		if e2, _ := mustGet(t, s, "c"); string(e2.Value) != "hello" {
			t.Fatalf("store aliases output: %q", e2.Value)
		}
		es, _ := s.List(ctx, "c")
		es[0].Value[0] = 'Z'
		if e2, _ := mustGet(t, s, "c"); string(e2.Value) != "hello" {
			t.Fatalf("list aliases store: %q", e2.Value)
		}
		for _, v := range [][]byte{nil, {}} {
			if _, err := s.Put(ctx, "empty", v, AnyRev); err != nil {
				t.Fatalf("put empty: %v", err)
			}
			e, ok := mustGet(t, s, "empty")
			if !ok || e.Value == nil || len(e.Value) != 0 {
				t.Fatalf("empty value = %#v %v, want []byte{} present", e.Value, ok)
			}
		}
		bin := []byte{0, 1, 2, 255, '\n'}
		mustPut(t, s, "bin", string(bin), AnyRev)
		if e, _ := mustGet(t, s, "bin"); !bytes.Equal(e.Value, bin) {
			t.Fatalf("binary value = %v", e.Value)
		}
	})
}

func TestConformanceErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if _, err := s.Put(ctx, "", []byte("v"), AnyRev); errs.KindOf(err) != errs.InvalidArgument {
			t.Fatalf("put empty key: %v", err)
		}
		if _, _, err := s.Get(ctx, ""); errs.KindOf(err) != errs.InvalidArgument {
			t.Fatalf("get empty key: %v", err)
		}
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Put(canceled, "k", []byte("v"), AnyRev); errs.KindOf(err) != errs.Canceled {
			t.Fatalf("put canceled: %v", err)
		}
		if _, ok := mustGet(t, s, "k"); ok {
			t.Fatal("canceled put wrote")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if _, _, err := s.Get(ctx, "k"); errs.KindOf(err) != errs.Unavailable {
			t.Fatalf("get after close: %v", err)
		}
		if _, err := s.Put(ctx, "k", nil, AnyRev); errs.KindOf(err) != errs.Unavailable {
			t.Fatalf("put after close: %v", err)
		}
		if _, err := s.List(ctx, ""); errs.KindOf(err) != errs.Unavailable {
			t.Fatalf("list after close: %v", err)
		}
		if err := s.Delete(ctx, "k", AnyRev); errs.KindOf(err) != errs.Unavailable {
			t.Fatalf("delete after close: %v", err)
		}
	})
}

// TestConformanceConcurrentIncrements: 50 goroutines increment one counter
// through Update; optimistic retries must lose no increment.
func TestConformanceConcurrentIncrements(t *testing.T) {
	const n = 50
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errc := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := Update(ctx, s, "counter", func(old []byte, exists bool) ([]byte, error) {
					v := 0
					if exists {
						var err error
						if v, err = strconv.Atoi(string(old)); err != nil {
							return nil, err
						}
					}
					return []byte(strconv.Itoa(v + 1)), nil
				})
				errc <- err
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatalf("update: %v", err)
			}
		}
		if e, _ := mustGet(t, s, "counter"); string(e.Value) != strconv.Itoa(n) {
			t.Fatalf("counter = %q, want %d", e.Value, n)
		}
	})
}

func TestUpdateFnErrorAborts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		r := mustPut(t, s, "k", "v", AnyRev)
		boom := errs.New(errs.InvalidArgument, "boom")
		_, err := Update(ctx, s, "k", func([]byte, bool) ([]byte, error) { return nil, boom })
		if err != boom {
			t.Fatalf("update err = %v, want boom", err)
		}
		if e, _ := mustGet(t, s, "k"); e.Rev != r || string(e.Value) != "v" {
			t.Fatalf("aborted update wrote: %+v", e)
		}
		// Absent key: fn sees exists=false and the write is a create.
		rev, err := Update(ctx, s, "new", func(old []byte, exists bool) ([]byte, error) {
			if exists || old != nil {
				return nil, fmt.Errorf("exists=%v old=%q", exists, old)
			}
			return []byte("created"), nil
		})
		if err != nil || rev == 0 {
			t.Fatalf("update absent: rev %d err %v", rev, err)
		}
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		_, err = Update(canceled, s, "k", func(old []byte, _ bool) ([]byte, error) { return old, nil })
		if errs.KindOf(err) != errs.Canceled {
			t.Fatalf("update canceled: %v", err)
		}
	})
}

// conflictStore always reports a conflict on Put, to check that Update's
// retry loop is bounded.
type conflictStore struct{ Store }

func (conflictStore) Put(context.Context, string, []byte, uint64) (uint64, error) {
	return 0, conflict("put", "k")
}

func TestUpdateGivesUp(t *testing.T) {
	s := conflictStore{NewMemory()}
	calls := 0
	_, err := Update(context.Background(), s, "k", func([]byte, bool) ([]byte, error) {
		calls++
		return []byte("v"), nil
	})
	wantConflict(t, err, "update against permanent conflict")
	if calls != maxUpdateAttempts {
		t.Fatalf("fn called %d times, want %d", calls, maxUpdateAttempts)
	}
}

// Apply writes and removes in order, through one transaction where the
// backend has them (a Batcher) and one call at a time elsewhere; the
// revisions it hands out stay new, and an empty key refuses the whole batch
// on a Batcher.
func TestConformanceApply(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		before := mustPut(t, s, "j/1", "one", 0)
		mustPut(t, s, "j/2", "two", 0)
		err := Apply(ctx, s, []Op{
			{Key: "j/1", Delete: true},
			{Key: "j/3", Value: []byte("three")},
			{Key: "j/2", Value: []byte("two again")},
			{Key: "j/4", Value: []byte("gone")},
			{Key: "j/4", Delete: true},
			{Key: "j/absent", Delete: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.List(ctx, "j/")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range list {
			got = append(got, e.Key+"="+string(e.Value))
			if e.Rev <= before {
				t.Errorf("%s has revision %d, not above %d", e.Key, e.Rev, before)
			}
		}
		if want := "j/2=two again j/3=three"; strings.Join(got, " ") != want {
			t.Errorf("after Apply: %q, want %q", strings.Join(got, " "), want)
		}
		if _, ok := s.(Batcher); !ok {
			return
		}
		err = Apply(ctx, s, []Op{{Key: "j/5", Value: []byte("x")}, {Key: ""}})
		if errs.KindOf(err) != errs.InvalidArgument {
			t.Errorf("batch with an empty key: %v, want invalid_argument", err)
		}
		if _, ok := mustGet(t, s, "j/5"); ok {
			t.Error("a refused batch wrote part of itself")
		}
	})
}
