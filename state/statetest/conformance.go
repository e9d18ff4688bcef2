// Package statetest is the conformance suite of state.Store: every backend
// (bolt, memory, gokv, the Kubernetes API server) runs the same tests, so
// what the Store interface promises is checked once and for all of them.
package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"aima/errs"
	"aima/state"
)

// Open returns a fresh, empty store for one test.
type Open func(t *testing.T) state.Store

// Run runs the conformance suite against stores made by open, each test on
// a fresh store, closed when the test ends (tests may close it too: Close
// is idempotent).
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		f    func(t *testing.T, s state.Store)
	}{
		{"GetPut", testGetPut}, {"CreateIfAbsent", testCreateIfAbsent}, {"ListPrefixOrder", testListPrefixOrder},
		{"Delete", testDelete}, {"NoRevReuse", testNoRevReuse}, {"CopiesAndEmptyValues", testCopiesAndEmptyValues},
		{"Errors", testErrors}, {"ConcurrentIncrements", testConcurrentIncrements},
		{"UpdateFnErrorAborts", testUpdateFnErrorAborts}, {"Apply", testApply},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.f(t, s)
		})
	}
}

func mustPut(t *testing.T, s state.Store, key, val string, expectRev uint64) uint64 {
	t.Helper()
	rev, err := s.Put(context.Background(), key, []byte(val), expectRev)
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	if rev == 0 || rev == state.AnyRev {
		t.Fatalf("put %q: bad rev %d", key, rev)
	}
	return rev
}

func mustGet(t *testing.T, s state.Store, key string) (state.Entry, bool) {
	t.Helper()
	e, ok, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return e, ok
}

func wantConflict(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, state.ErrConflict) || errs.KindOf(err) != errs.Conflict {
		t.Fatalf("%s: want conflict, got %v (kind %q)", what, err, errs.KindOf(err))
	}
}

// testConcurrentIncrements: 50 goroutines increment one counter through
// Update; optimistic retries must lose no increment.
func testConcurrentIncrements(t *testing.T, s state.Store) {
	const n = 50
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := state.Update(ctx, s, "counter", func(old []byte, exists bool) ([]byte, error) {
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
}

func testGetPut(t *testing.T, s state.Store) {
	ctx := context.Background()
	if _, ok := mustGet(t, s, "a"); ok {
		t.Fatal("fresh store has key a")
	}
	r1 := mustPut(t, s, "a", "one", state.AnyRev)
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
	r3 := mustPut(t, s, "a", "three", state.AnyRev)
	if r3 <= r2 {
		t.Fatalf("rev did not increase: %d -> %d", r2, r3)
	}
}

func testCreateIfAbsent(t *testing.T, s state.Store) {
	ctx := context.Background()
	mustPut(t, s, "x", "first", 0)
	_, err := s.Put(ctx, "x", []byte("second"), 0)
	wantConflict(t, err, "put expectRev 0 on existing key")
	if _, err := state.Create(ctx, s, "y", []byte("y")); err != nil {
		t.Fatalf("create y: %v", err)
	}
	_, err = state.Create(ctx, s, "y", []byte("again"))
	wantConflict(t, err, "create existing")
	if e, _ := mustGet(t, s, "y"); string(e.Value) != "y" {
		t.Fatalf("y overwritten: %q", e.Value)
	}
	if e, _ := mustGet(t, s, "x"); string(e.Value) != "first" {
		t.Fatalf("x overwritten: %q", e.Value)
	}
}

func testListPrefixOrder(t *testing.T, s state.Store) {
	ctx := context.Background()
	for _, k := range []string{"b/2", "a/1", "b/10", "c", "b/1", "b", "ba", "b/1/x"} {
		mustPut(t, s, k, "v-"+k, state.AnyRev)
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
}

func testDelete(t *testing.T, s state.Store) {
	ctx := context.Background()
	r := mustPut(t, s, "d", "v", state.AnyRev)
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
	if err := s.Delete(ctx, "d", state.AnyRev); err != nil {
		t.Fatalf("delete absent AnyRev: %v", err)
	}
	if err := s.Delete(ctx, "d", 0); err != nil {
		t.Fatalf("delete absent 0: %v", err)
	}
	wantConflict(t, s.Delete(ctx, "d", r), "delete absent with rev")
	// Unconditional delete of a present key.
	mustPut(t, s, "e", "v", state.AnyRev)
	if err := s.Delete(ctx, "e", state.AnyRev); err != nil {
		t.Fatalf("delete AnyRev: %v", err)
	}
	if _, ok := mustGet(t, s, "e"); ok {
		t.Fatal("e still present")
	}
}

// TestConformanceNoRevReuse: a key deleted and re-created gets a new
// revision, so a writer holding the old one cannot clobber the new value.
func testNoRevReuse(t *testing.T, s state.Store) {
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
}

func testCopiesAndEmptyValues(t *testing.T, s state.Store) {
	ctx := context.Background()
	in := []byte("hello")
	if _, err := s.Put(ctx, "c", in, state.AnyRev); err != nil {
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
		if _, err := s.Put(ctx, "empty", v, state.AnyRev); err != nil {
			t.Fatalf("put empty: %v", err)
		}
		e, ok := mustGet(t, s, "empty")
		if !ok || e.Value == nil || len(e.Value) != 0 {
			t.Fatalf("empty value = %#v %v, want []byte{} present", e.Value, ok)
		}
	}
	bin := []byte{0, 1, 2, 255, '\n'}
	mustPut(t, s, "bin", string(bin), state.AnyRev)
	if e, _ := mustGet(t, s, "bin"); !bytes.Equal(e.Value, bin) {
		t.Fatalf("binary value = %v", e.Value)
	}
}

func testErrors(t *testing.T, s state.Store) {
	ctx := context.Background()
	if _, err := s.Put(ctx, "", []byte("v"), state.AnyRev); errs.KindOf(err) != errs.InvalidArgument {
		t.Fatalf("put empty key: %v", err)
	}
	if _, _, err := s.Get(ctx, ""); errs.KindOf(err) != errs.InvalidArgument {
		t.Fatalf("get empty key: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Put(canceled, "k", []byte("v"), state.AnyRev); errs.KindOf(err) != errs.Canceled {
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
	if _, err := s.Put(ctx, "k", nil, state.AnyRev); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("put after close: %v", err)
	}
	if _, err := s.List(ctx, ""); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("list after close: %v", err)
	}
	if err := s.Delete(ctx, "k", state.AnyRev); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("delete after close: %v", err)
	}
}

func testUpdateFnErrorAborts(t *testing.T, s state.Store) {
	ctx := context.Background()
	r := mustPut(t, s, "k", "v", state.AnyRev)
	boom := errs.New(errs.InvalidArgument, "boom")
	_, err := state.Update(ctx, s, "k", func([]byte, bool) ([]byte, error) { return nil, boom })
	if err != boom {
		t.Fatalf("update err = %v, want boom", err)
	}
	if e, _ := mustGet(t, s, "k"); e.Rev != r || string(e.Value) != "v" {
		t.Fatalf("aborted update wrote: %+v", e)
	}
	// Absent key: fn sees exists=false and the write is a create.
	rev, err := state.Update(ctx, s, "new", func(old []byte, exists bool) ([]byte, error) {
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
	_, err = state.Update(canceled, s, "k", func(old []byte, _ bool) ([]byte, error) { return old, nil })
	if errs.KindOf(err) != errs.Canceled {
		t.Fatalf("update canceled: %v", err)
	}
}

// Apply writes and removes in order, through one transaction where the
// backend has them (a Batcher) and one call at a time elsewhere; the
// revisions it hands out stay new, and an empty key refuses the whole batch
// on a Batcher.
func testApply(t *testing.T, s state.Store) {
	ctx := context.Background()
	before := mustPut(t, s, "j/1", "one", 0)
	mustPut(t, s, "j/2", "two", 0)
	err := state.Apply(ctx, s, []state.Op{
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
	if _, ok := s.(state.Batcher); !ok {
		return
	}
	err = state.Apply(ctx, s, []state.Op{{Key: "j/5", Value: []byte("x")}, {Key: ""}})
	if errs.KindOf(err) != errs.InvalidArgument {
		t.Errorf("batch with an empty key: %v, want invalid_argument", err)
	}
	if _, ok := mustGet(t, s, "j/5"); ok {
		t.Error("a refused batch wrote part of itself")
	}
}
