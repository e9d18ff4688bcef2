package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/errs"
)

// makeBoltFile writes a store at dir/aima.db holding a service record, a
// model record and enough journal entries to pass size bytes, and returns
// its path. The store is closed again, so its backup exists too.
func makeBoltFile(t *testing.T, dir string, size int64) string {
	t.Helper()
	path := filepath.Join(dir, "aima.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustPut(t, s, "services/svc-1", `{"id":"svc-1","name":"one","status":"created"}`, AnyRev)
	mustPut(t, s, "models/m-1", `{"id":"m-1","name":"m","path":"/m"}`, AnyRev)
	msg := strings.Repeat("loading weights ", 20)
	for i := 0; ; i++ {
		if i%200 == 0 {
			if st, _ := os.Stat(path); st.Size() >= size {
				break
			}
		}
		val := fmt.Sprintf(`{"seq":%d,"service_id":"svc-1","message":%q}`, i, msg)
		if _, err := s.Put(ctx, fmt.Sprintf("events/svc-1/%020d", i), []byte(val), AnyRev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func copyFile(t *testing.T, from, to string, size int64) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if size >= 0 && size < int64(len(b)) {
		b = b[:size]
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A truncated store file, at any length, is reported as such by InspectBolt
// and refused by OpenBolt with an unavailable error that names the file,
// says what is wrong and points at the backup and how to restore it; never
// a panic. Without a backup the error says how to start empty instead.
func TestTruncatedStoreIsAClearError(t *testing.T) {
	orig := makeBoltFile(t, t.TempDir(), 1<<20)
	for _, size := range []int64{0, 100, 4 << 10, 8 << 10, 16 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10} {
		t.Run(fmt.Sprintf("%dbytes", size), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "aima.db")
			copyFile(t, orig, path, size)
			want := FileTruncated
			if size == 0 {
				want = FileEmpty
			}
			if r := InspectBolt(path); r.Status != want || r.Problem == "" {
				t.Fatalf("InspectBolt = %+v, want %s with a problem", r, want)
			}
			_, err := OpenBolt(path)
			if errs.KindOf(err) != errs.Unavailable {
				t.Fatalf("OpenBolt = %v, want unavailable", err)
			}
			for _, s := range []string{path, "is damaged (" + want + ")", "no sound backup", "mv " + path} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			// With a sound backup, the error points at it and at restore.
			copyFile(t, BackupPath(orig), BackupPath(path), -1)
			_, err = OpenBolt(path)
			for _, s := range []string{path, BackupPath(path) + " from ", "is sound (services: 1, models: 1)", "aima store restore --data-dir " + dir} {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("error %v does not say %q", err, s)
				}
			}
			if st, err := os.Stat(path); err != nil || st.Size() != size {
				t.Errorf("the damaged file was changed: %v, %v", st, err)
			}
		})
	}
}

// Garbage over the header pages is "corrupt"; garbage over the data pages
// is caught by the page walk or bbolt's check. Neither crashes.
func TestCorruptStoreIsReported(t *testing.T) {
	orig := makeBoltFile(t, t.TempDir(), 256<<10)
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "aima.db")
	garbage := func(off, n int) []byte {
		c := append([]byte(nil), b...)
		x := uint32(off + 1)
		for i := off; i < off+n && i < len(c); i++ {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			c[i] = byte(x)
		}
		return c
	}
	if err := os.WriteFile(path, garbage(0, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := InspectBolt(path); r.Status != FileCorrupt || !strings.Contains(r.Problem, "header") {
		t.Fatalf("garbage headers: %+v", r)
	}
	corrupt := 0
	for page := 2; page*4096 < len(b); page += 3 {
		if err := os.WriteFile(path, garbage(page*4096, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		r := InspectBolt(path)
		if r.Status == FileCorrupt {
			corrupt++
		} else if r.Status != FileOK {
			t.Fatalf("page %d overwritten: %+v", page, r)
		}
	}
	if corrupt == 0 {
		t.Fatal("no overwritten page was reported corrupt")
	}
	t.Logf("%d of the overwritten pages made the file corrupt (the rest hit record values, listed as damaged records)", corrupt)
}

func TestInspectBoltStatuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aima.db")
	if r := InspectBolt(path); r.Status != FileMissing {
		t.Fatalf("missing: %+v", r)
	}
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "services/svc-bad", "{not json", AnyRev)
	mustPut(t, s, "services/svc-ok", `{"id":"svc-ok"}`, AnyRev)
	if r := InspectBolt(path); r.Status != FileLocked {
		t.Fatalf("open by a store: %+v, want locked", r)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := InspectBolt(path)
	if !r.OK() || r.Records["services"] != 2 || len(r.Damaged) != 1 || r.Damaged[0].Key != "services/svc-bad" {
		t.Fatalf("sound file with a bad record: %+v", r)
	}
}

// Every open writes a sound backup next to the store; a store that
// changed gets a new one on the next round, an unchanged one is left.
func TestBackups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aima.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bak := BackupPath(path)
	if r := InspectBolt(bak); !r.OK() {
		t.Fatalf("backup after open: %+v", r)
	}
	info := Describe(s)
	if info.Backend != BackendBolt || info.Path != path || !info.Created || info.Backup != bak || info.BackupAt == nil || info.BackupError != "" {
		t.Fatalf("Describe = %+v", info)
	}
	b := s.(*boltStore).backups
	first := *info.BackupAt
	b.run()
	if at, _ := b.status(); !at.Equal(first) {
		t.Fatal("an unchanged store was backed up again")
	}
	mustPut(t, s, "services/svc-1", `{"id":"svc-1"}`, AnyRev)
	b.run()
	if at, err := b.status(); err != nil || !at.After(first) {
		t.Fatalf("changed store: backup at %v (first %v), %v", at, first, err)
	}
	if r := InspectBolt(bak); !r.OK() || r.Records["services"] != 1 {
		t.Fatalf("backup after a change: %+v", r)
	}
}

// A store that vanished while its backup exists is not silently started
// empty (that would overwrite the backup): OpenBolt refuses and says how
// to restore, and RestoreBolt brings the records back.
func TestVanishedStoreAndRestore(t *testing.T) {
	dir := t.TempDir()
	path := makeBoltFile(t, dir, 64<<10)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err := OpenBolt(path)
	if errs.KindOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "is missing, but its backup") || !strings.Contains(err.Error(), "aima store restore") {
		t.Fatalf("OpenBolt of a vanished store = %v", err)
	}
	res, err := RestoreBolt(path, false)
	if err != nil || res.MovedAside != "" || res.Records["services"] != 1 {
		t.Fatalf("RestoreBolt = %+v, %v", res, err)
	}
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := mustGet(t, s, "services/svc-1"); !ok || !strings.Contains(string(e.Value), "svc-1") {
		t.Fatalf("restored record: %+v %v", e, ok)
	}
	if _, err := RestoreBolt(path, true); errs.KindOf(err) != errs.Conflict || !strings.Contains(err.Error(), "running aima daemon") {
		t.Fatalf("RestoreBolt while open = %v, want conflict", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreBolt(path, false); errs.KindOf(err) != errs.Conflict || !strings.Contains(err.Error(), "is sound") {
		t.Fatalf("RestoreBolt over a sound store = %v, want conflict", err)
	}
}

func TestRestoreDamagedStore(t *testing.T) {
	dir := t.TempDir()
	path := makeBoltFile(t, dir, 128<<10)
	if err := os.Truncate(path, 8<<10); err != nil {
		t.Fatal(err)
	}
	res, err := RestoreBolt(path, false)
	if err != nil || !strings.HasPrefix(res.MovedAside, path+".damaged-") {
		t.Fatalf("RestoreBolt = %+v, %v", res, err)
	}
	if st, err := os.Stat(res.MovedAside); err != nil || st.Size() != 8<<10 {
		t.Fatalf("the damaged file is not kept: %v, %v", st, err)
	}
	if r := InspectBolt(path); !r.OK() || r.Records["services"] != 1 {
		t.Fatalf("restored store: %+v", r)
	}
	// A damaged backup is refused.
	if err := os.Truncate(BackupPath(path), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreBolt(path, true); errs.KindOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("RestoreBolt from an empty backup = %v", err)
	}
}

// The store identity is made once, survives reopening and travels with a
// restored backup.
func TestStoreID(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "aima.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := StoreID(ctx, s)
	if err != nil || len(id) != 12 {
		t.Fatalf("StoreID = %q, %v", id, err)
	}
	if again, _ := StoreID(ctx, s); again != id {
		t.Fatalf("StoreID changed: %q then %q", id, again)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreBolt(path, false); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := StoreID(ctx, s); got != id {
		t.Fatalf("StoreID after restore = %q, want %q", got, id)
	}
	if other, _ := StoreID(ctx, NewMemory()); other == id || other == "" {
		t.Fatalf("another store's id %q", other)
	}
}

// The periodic backup loop ends with Close.
func TestBackupLoopEnds(t *testing.T) {
	old := backupInterval
	backupInterval = time.Millisecond
	defer func() { backupInterval = old }()
	path := filepath.Join(t.TempDir(), "aima.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		mustPut(t, s, fmt.Sprintf("services/svc-%d", i), `{"id":"x"}`, AnyRev)
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if r := InspectBolt(BackupPath(path)); !r.OK() {
		t.Fatalf("backup: %+v", r)
	}
}
