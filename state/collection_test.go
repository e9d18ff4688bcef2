package state

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"aima/errs"
)

type svc struct {
	ID    string `json:"id"`
	Model string `json:"model"`
	N     int    `json:"n"`
}

func TestCollection(t *testing.T) { testCollection(t, false) }

// The same behaviour with the record cache on.
func TestCachedCollection(t *testing.T) { testCollection(t, true) }

func testCollection(t *testing.T, cached bool) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		c := NewCollection[svc](s, "services/", "service")
		if cached {
			c = c.WithCache()
		}

		_, err := c.Get(ctx, "svc-12ab")
		if errs.KindOf(err) != errs.NotFound || err.Error() != "service svc-12ab not found" {
			t.Fatalf("get missing: %v (kind %q)", err, errs.KindOf(err))
		}
		for _, id := range []string{"svc-b", "svc-a", "svc-c"} {
			if err := c.Create(ctx, id, svc{ID: id, Model: "m"}); err != nil {
				t.Fatalf("create %s: %v", id, err)
			}
		}
		err = c.Create(ctx, "svc-a", svc{ID: "svc-a", Model: "other"})
		if errs.KindOf(err) != errs.Conflict || err.Error() != "service svc-a already exists" {
			t.Fatalf("create dup: %v", err)
		}
		got, err := c.Get(ctx, "svc-a")
		if err != nil || got != (svc{ID: "svc-a", Model: "m"}) {
			t.Fatalf("get svc-a = %+v, %v", got, err)
		}

		// A foreign key nested under the prefix is not a record.
		if _, err := s.Put(ctx, "services/svc-a/logs", []byte("not json"), AnyRev); err != nil {
			t.Fatal(err)
		}
		// Nor is a key of a neighbouring collection.
		if err := NewCollection[svc](s, "servicesx/", "x").Put(ctx, "z", svc{ID: "z"}); err != nil {
			t.Fatal(err)
		}
		list, err := c.List(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		var ids []string
		for _, v := range list {
			ids = append(ids, v.ID)
		}
		if strings.Join(ids, ",") != "svc-a,svc-b,svc-c" {
			t.Fatalf("list ids = %v", ids)
		}

		up, err := c.Update(ctx, "svc-b", func(v *svc) error { v.N += 5; return nil })
		if err != nil || up.N != 5 || up.ID != "svc-b" {
			t.Fatalf("update = %+v, %v", up, err)
		}
		if got, _ := c.Get(ctx, "svc-b"); got.N != 5 {
			t.Fatalf("after update N = %d", got.N)
		}
		_, err = c.Update(ctx, "nope", func(v *svc) error { return nil })
		if errs.KindOf(err) != errs.NotFound || err.Error() != "service nope not found" {
			t.Fatalf("update missing: %v", err)
		}
		before, _, _ := s.Get(ctx, "services/svc-b")
		boom := errors.New("boom")
		_, err = c.Update(ctx, "svc-b", func(v *svc) error { v.N = 99; return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("update fn error: %v", err)
		}
		if after, _, _ := s.Get(ctx, "services/svc-b"); after.Rev != before.Rev {
			t.Fatal("aborted update wrote")
		}

		if err := c.Put(ctx, "svc-a", svc{ID: "svc-a", Model: "replaced"}); err != nil {
			t.Fatal(err)
		}
		if err := c.Put(ctx, "svc-d", svc{ID: "svc-d"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.Get(ctx, "svc-a"); got.Model != "replaced" {
			t.Fatalf("put: %+v", got)
		}

		if err := c.Delete(ctx, "svc-a"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := c.Get(ctx, "svc-a"); errs.KindOf(err) != errs.NotFound {
			t.Fatalf("get deleted: %v", err)
		}
		if err := c.Delete(ctx, "svc-a"); errs.KindOf(err) != errs.NotFound {
			t.Fatalf("delete missing: %v", err)
		}
		if list, _ := c.List(ctx); len(list) != 3 {
			t.Fatalf("list after delete: %+v", list)
		}
	})
}

func TestCollectionInvalidIDs(t *testing.T) {
	ctx := context.Background()
	c := NewCollection[svc](NewMemory(), "services/", "service")
	bad := []string{"", "a/b", "tab\there", "nl\n", "nul\x00", "del\x7f", "c1\u0085", strings.Repeat("x", 129), "bad\xffutf8"}
	for _, id := range bad {
		checks := map[string]error{
			"get":    func() error { _, err := c.Get(ctx, id); return err }(),
			"create": c.Create(ctx, id, svc{}),
			"put":    c.Put(ctx, id, svc{}),
			"delete": c.Delete(ctx, id),
			"update": func() error { _, err := c.Update(ctx, id, func(*svc) error { return nil }); return err }(),
		}
		for op, err := range checks {
			if errs.KindOf(err) != errs.InvalidArgument || errs.FieldOf(err) != "" ||
				!strings.HasPrefix(err.Error(), "invalid id ") {
				t.Errorf("%s %q: %v", op, id, err)
			}
		}
	}
	for _, id := range []string{"svc-1a2b", strings.Repeat("x", 128), "llama3:8b", "ünï"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("valid id %q rejected: %v", id, err)
		}
	}
	if list, _ := c.List(ctx); len(list) != 0 {
		t.Fatalf("invalid ids wrote records: %+v", list)
	}
}

// TestCollectionConcurrent: concurrent Updates of one record lose nothing,
// and of two concurrent Deletes exactly one wins.
func TestCollectionConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		c := NewCollection[svc](s, "services/", "service")
		if err := c.Create(ctx, "svc-1", svc{ID: "svc-1"}); err != nil {
			t.Fatal(err)
		}
		const n = 50
		var wg sync.WaitGroup
		errc := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Update(ctx, "svc-1", func(v *svc) error { v.N++; return nil })
				errc <- err
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := c.Get(ctx, "svc-1"); got.N != n {
			t.Fatalf("N = %d, want %d", got.N, n)
		}

		results := make(chan error, 2)
		for range 2 {
			go func() { results <- c.Delete(ctx, "svc-1") }()
		}
		e1, e2 := <-results, <-results
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("two deletes: %v, %v; want one success", e1, e2)
		}
		if e := errors.Join(e1, e2); errs.KindOf(e) != errs.NotFound {
			t.Fatalf("losing delete: %v", e)
		}
	})
}

// A record that does not decode is quarantined in place: left out of List,
// reported by Scan and Damaged, refused by Get and Update with a conflict
// that says it is damaged, and removable with Delete; one bad record never
// hides the others.
func TestCollectionQuarantinesDamagedRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		c := NewCollection[svc](s, "services/", "service")
		if err := c.Create(ctx, "svc-ok", svc{ID: "svc-ok"}); err != nil {
			t.Fatal(err)
		}
		bad := map[string]string{"svc-bad": "{not json", "svc-null": "null", "svc-list": "[1]", "svc-type": `{"n":"x"}`, "svc-empty": ""}
		for id, v := range bad {
			if _, err := s.Put(ctx, "services/"+id, []byte(v), AnyRev); err != nil {
				t.Fatal(err)
			}
		}
		list, err := c.List(ctx)
		if err != nil || len(list) != 1 || list[0].ID != "svc-ok" {
			t.Fatalf("List = %+v, %v", list, err)
		}
		good, damaged, err := c.Scan(ctx)
		if err != nil || len(good) != 1 || len(damaged) != len(bad) {
			t.Fatalf("Scan = %+v, %+v, %v", good, damaged, err)
		}
		for _, d := range damaged {
			if _, ok := bad[d.ID]; !ok || d.Kind != "service" || d.Error == "" {
				t.Errorf("damaged %+v", d)
			}
		}
		_, err = c.Get(ctx, "svc-bad")
		if errs.KindOf(err) != errs.Conflict || !IsDamaged(err) || !strings.Contains(err.Error(), "service svc-bad is damaged in the state store") {
			t.Fatalf("Get(damaged) = %v (kind %q)", err, errs.KindOf(err))
		}
		if _, err := c.Update(ctx, "svc-bad", func(*svc) error { return nil }); !IsDamaged(err) {
			t.Fatalf("Update(damaged) = %v", err)
		}
		for id := range bad {
			if err := c.Delete(ctx, id); err != nil {
				t.Fatalf("Delete(%s) = %v", id, err)
			}
		}
		if d, err := c.Damaged(ctx); err != nil || len(d) != 0 {
			t.Fatalf("Damaged after deletes = %+v, %v", d, err)
		}
	})
}

// A cached collection reports records damaged in the store when it was
// first read, heals them on Put, forgets them on Delete, and concurrent
// updates all reach the cache in store order.
func TestCachedCollectionDamagedAndConcurrent(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	if _, err := s.Put(ctx, "services/svc-bad", []byte("{not json"), AnyRev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "services/svc-gone", []byte("[]"), AnyRev); err != nil {
		t.Fatal(err)
	}
	c := NewCollection[svc](s, "services/", "service").WithCache()
	if err := c.Create(ctx, "svc-ok", svc{ID: "svc-ok"}); err != nil {
		t.Fatal(err)
	}
	vals, raws, bad, err := c.ScanShared(ctx)
	if err != nil || len(vals) != 1 || vals[0].ID != "svc-ok" || string(raws[0]) != `{"id":"svc-ok","model":"","n":0}` || len(bad) != 2 || bad[0].ID != "svc-bad" || bad[0].Bytes != 9 {
		t.Fatalf("ScanShared = %+v %q %+v %v", vals, raws, bad, err)
	}
	if d, err := c.Damaged(ctx); err != nil || len(d) != 2 || d[1].ID != "svc-gone" {
		t.Fatalf("Damaged = %+v, %v", d, err)
	}
	if _, err := c.Get(ctx, "svc-bad"); !IsDamaged(err) {
		t.Fatalf("get damaged: %v", err)
	}
	if err := c.Put(ctx, "svc-bad", svc{ID: "svc-bad", N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "svc-gone"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "svc-bad"); err != nil || got.N != 1 {
		t.Fatalf("healed record = %+v, %v", got, err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Update(ctx, "svc-ok", func(v *svc) error { v.N++; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := c.Get(ctx, "svc-ok")
	stored, _ := NewCollection[svc](s, "services/", "service").Get(ctx, "svc-ok")
	if got.N != 20 || stored != got {
		t.Fatalf("after 20 updates: cache %+v, store %+v", got, stored)
	}
	all, bad, _ := c.Scan(ctx)
	if len(all) != 2 || len(bad) != 0 {
		t.Fatalf("Scan = %+v, damaged %+v", all, bad)
	}
}

// ScanShared hands out the cached records themselves: a later write
// replaces a record in the cache and never changes one already handed out.
func TestCachedCollectionSharedRecordsAreNeverModified(t *testing.T) {
	ctx := context.Background()
	c := NewCollection[svc](NewMemory(), "services/", "service").WithCache()
	if err := c.Create(ctx, "svc-a", svc{ID: "svc-a", N: 1}); err != nil {
		t.Fatal(err)
	}
	before, _, _, err := c.ScanShared(ctx)
	if err != nil || len(before) != 1 {
		t.Fatalf("ScanShared = %+v, %v", before, err)
	}
	if _, err := c.Update(ctx, "svc-a", func(v *svc) error { v.N = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	after, raws, _, _ := c.ScanShared(ctx)
	if before[0].N != 1 || after[0].N != 2 || string(raws[0]) != `{"id":"svc-a","model":"","n":2}` {
		t.Fatalf("before %+v, after %+v %s", before[0], after[0], raws[0])
	}
	got, _ := c.Get(ctx, "svc-a")
	got.N = 3 // a Get is the caller's copy
	if again, _, _, _ := c.ScanShared(ctx); again[0].N != 2 {
		t.Fatalf("a Get's copy changed the cache: %+v", again[0])
	}
}
