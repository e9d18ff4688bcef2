package kubestore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"aima/errs"
	"aima/internal/testenv/kube"
	"aima/state"
)

// Migration both ways (what `aima store migrate` does), and a backup to a
// file and its restore (`aima store backup`, `aima store restore --from`):
// every key and value arrives, revisions are the destination's own.
func TestMigrateBothWays(t *testing.T) {
	c := kube.Shared(t)
	c.InstallCRDs(t)
	ctx := context.Background()
	dir := t.TempDir()
	bolt, err := state.OpenBolt(filepath.Join(dir, "aima.db"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 60 {
		want[fmt.Sprintf("services/svc-%03d", i)] = fmt.Sprintf(`{"id":"svc-%03d"}`, i)
		want[fmt.Sprintf("events/svc-%03d/%020d", i%3, i)] = fmt.Sprintf(`{"seq":%d}`, i)
	}
	want["models/m-1"] = `{"id":"m-1"}`
	want["meta/identity"] = `{"id":"0123456789ab"}`
	want["bin"] = "\x00\xff"
	for k, v := range want {
		if _, err := bolt.Put(ctx, k, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	kst := open(t, c, c.Namespace(t))
	res, err := state.Copy(ctx, kst, bolt, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records["services"] != 60 || res.Records["events"] != 60 {
		t.Fatalf("copied %v", res.Records)
	}
	same(t, kst, want)
	// A second migration into a store that holds records needs force.
	if _, err := state.Copy(ctx, kst, bolt, false); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("copy over records without force: %v, want conflict", err)
	}
	// And back, into a fresh bbolt store.
	if err := bolt.Close(); err != nil {
		t.Fatal(err)
	}
	back, err := state.OpenBolt(filepath.Join(t.TempDir(), "aima.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := state.Copy(ctx, back, kst, false); err != nil {
		t.Fatal(err)
	}
	same(t, back, want)

	// Backup to a file, change the store, restore with force: the store
	// is the file again (the extra key removed).
	file := filepath.Join(t.TempDir(), "backup.db")
	if _, err := state.ExportBolt(ctx, kst, file); err != nil {
		t.Fatal(err)
	}
	if _, err := kst.Put(ctx, "services/extra", []byte(`{}`), 0); err != nil {
		t.Fatal(err)
	}
	entries, err := state.ReadBoltFile(file)
	if err != nil {
		t.Fatal(err)
	}
	res, err = state.Copy(ctx, kst, state.Entries(entries), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 1 {
		t.Fatalf("restore removed %d, want 1", res.Removed)
	}
	same(t, kst, want)
}

func same(t *testing.T, s state.Store, want map[string]string) {
	t.Helper()
	got, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for _, e := range got {
		if want[e.Key] != string(e.Value) {
			t.Fatalf("%s = %q, want %q", e.Key, e.Value, want[e.Key])
		}
	}
}
