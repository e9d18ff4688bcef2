package state

import (
	"context"
	"strings"
	"testing"

	"github.com/philippgille/gokv/syncmap"

	"aima/errs"
)

func TestOpenKinds(t *testing.T) {
	for _, kind := range Backends() {
		s, err := Open(kind, t.TempDir())
		if err != nil {
			t.Fatalf("open %q: %v", kind, err)
		}
		mustPut(t, s, "k", "v", 0)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Open("etcd", t.TempDir())
	if errs.KindOf(err) != errs.InvalidArgument {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestGokvFileReopenAndLock(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(BackendGokvFile, dir)
	if err != nil {
		t.Fatal(err)
	}
	r := mustPut(t, s, "services/a", "A", 0)
	mustPut(t, s, "services/b", "B", 0)

	_, err = Open(BackendGokvFile, dir)
	if errs.KindOf(err) != errs.Unavailable || !strings.HasSuffix(err.Error(), "is locked by another aima process") {
		t.Fatalf("second open of locked gokv-file store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(BackendGokvFile, dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	es, err := s.List(context.Background(), "services/")
	if err != nil || len(es) != 2 || es[0].Key != "services/a" || string(es[1].Value) != "B" {
		t.Fatalf("after reopen list = %+v, %v", es, err)
	}
	if r2 := mustPut(t, s, "services/c", "C", 0); r2 <= r {
		t.Fatalf("rev reused after reopen: %d <= %d", r2, r)
	}
}

func TestGokvReservedKeyAndDanglingIndex(t *testing.T) {
	ctx := context.Background()
	kv := syncmap.NewStore(syncmap.DefaultOptions)
	s := NewGokv(kv)
	defer s.Close()
	if _, err := s.Put(ctx, gokvIndexKey, []byte("x"), AnyRev); errs.KindOf(err) != errs.InvalidArgument {
		t.Fatalf("put reserved key: %v", err)
	}
	mustPut(t, s, "a", "A", 0)
	// Simulate a crash between the index write and the value write of "b".
	var idx gokvIndex
	if _, err := kv.Get(gokvIndexKey, &idx); err != nil {
		t.Fatal(err)
	}
	idx.Keys = append(idx.Keys, "b")
	if err := kv.Set(gokvIndexKey, idx); err != nil {
		t.Fatal(err)
	}
	es, err := s.List(ctx, "")
	if err != nil || len(es) != 1 || es[0].Key != "a" {
		t.Fatalf("list with dangling index entry = %+v, %v", es, err)
	}
	// The dangling key can still be created and is listed once.
	mustPut(t, s, "b", "B", 0)
	if es, _ := s.List(ctx, ""); len(es) != 2 {
		t.Fatalf("list = %+v", es)
	}
}
