package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/state"
)

// The built binary on a damaged state store (no Docker needed): a truncated
// or emptied aima.db is a clear refusal of `aima start` (exit 5, the file
// named, what to do), never a Go panic; `aima store check` says what is
// wrong and `aima store restore` brings the backup back; one bad record is
// quarantined while everything else works.

// refuseBound bounds a refused `aima start`: a guard against a hang.
const refuseBound = time.Minute

// storeConfig is a daemon config for tests that start no engine.
func storeConfig(t *testing.T) string {
	return testenv.SimConfig(t, testenv.SimConfigOptions{Image: testenv.EngineSimRef})
}

// storeDataDir makes a data dir whose store holds three services, a model
// and enough history to pass 1 MiB, written through the state package the
// daemon uses, and returns the data dir.
func storeDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := state.OpenBolt(filepath.Join(dir, "aima.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := 1; i <= 3; i++ {
		rec := fmt.Sprintf(`{"id":"svc-%d","name":"svc%d","model_id":"org/tiny","model_ref":"org/tiny","engine_type":"vllm","status":"created","port":%d,"created_at":%q,"updated_at":%q}`, i, i, 30000+i, now, now)
		if _, err := s.Put(ctx, fmt.Sprintf("services/svc-%d", i), []byte(rec), state.AnyRev); err != nil {
			t.Fatal(err)
		}
	}
	msg := strings.Repeat("loading weights ", 64)
	for i := 0; i < 1100; i++ {
		ev := fmt.Sprintf(`{"seq":%d,"service_id":"svc-1","type":"message","message":%q,"time":%q}`, i+1, msg, now)
		if _, err := s.Put(ctx, fmt.Sprintf("events/svc-1/%020d", i+1), []byte(ev), state.AnyRev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// assertRefused checks a refused start: exit 5, no Go panic, and the
// message says each of want.
func assertRefused(t *testing.T, r testenv.Result, want ...string) {
	t.Helper()
	if r.Code != 5 {
		t.Errorf("aima start exited %d, want 5 (unavailable)\nstderr: %s", r.Code, r.Stderr)
	}
	for _, bad := range []string{"panic", "goroutine ", "invalid freelist"} {
		if strings.Contains(r.Stderr, bad) {
			t.Errorf("aima start printed %q:\n%s", bad, r.Stderr)
		}
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("aima start's error does not say %q:\n%s", w, r.Stderr)
		}
	}
}

func TestStoreTruncatedRefusesStart(t *testing.T) {
	cfg := storeConfig(t)
	pristine := storeDataDir(t)
	orig := filepath.Join(pristine, "aima.db")
	if st, err := os.Stat(orig); err != nil || st.Size() < 1<<20 {
		t.Fatalf("store is %v (%v), want over 1 MiB", st, err)
	}
	raw, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 8 << 10, 16 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10} {
		t.Run(fmt.Sprintf("%dKiB", size>>10), func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "aima.db")
			if err := os.WriteFile(db, raw[:size], 0o600); err != nil {
				t.Fatal(err)
			}
			d := testenv.NewDaemon(t, testenv.DaemonOptions{Config: cfg, DataDir: dir})
			what := "truncated"
			if size == 0 {
				what = "empty"
			}
			assertRefused(t, d.StartRefused(t, refuseBound), db, "is damaged ("+what+")", "no sound backup", "mv "+db)
		})
	}
}

// With the backup a clean run leaves: the refusal points at it, `store
// check` shows both files, `store restore` puts it back and the daemon
// serves the records.
func TestStoreRestoreFromBackup(t *testing.T) {
	dir := storeDataDir(t)
	db := filepath.Join(dir, "aima.db")
	if err := os.Truncate(db, 64<<10); err != nil {
		t.Fatal(err)
	}
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Config: storeConfig(t), DataDir: dir})
	assertRefused(t, d.StartRefused(t, refuseBound), db, "is damaged (truncated)", db+".bak", "is sound (services: 3,", "aima store restore --data-dir "+dir)

	check := d.CLI(t, "store", "check", "--data-dir", dir, "-o", "json")
	var rep struct {
		Store, Backup state.FileReport
	}
	if err := json.Unmarshal([]byte(check.Stdout), &rep); err != nil || check.Code != 5 {
		t.Fatalf("store check: exit %d, %v\n%s", check.Code, err, check.Stdout)
	}
	if rep.Store.Status != state.FileTruncated || !rep.Backup.OK() || rep.Backup.Records["services"] != 3 {
		t.Fatalf("store check: %+v", rep)
	}
	text := d.CLI(t, "store", "check", "--data-dir", dir)
	if !strings.Contains(text.Stdout, "store: "+db+": truncated") || !strings.Contains(text.Stdout, "backup: "+db+".bak: ok") {
		t.Fatalf("store check (table):\n%s", text.Stdout)
	}

	restore := d.MustCLI(t, "store", "restore", "--data-dir", dir)
	if !strings.Contains(restore.Stdout, "restored "+db) || !strings.Contains(restore.Stdout, ".damaged-") {
		t.Fatalf("store restore: %s", restore.Stdout)
	}
	if r := d.CLI(t, "store", "restore", "--data-dir", dir); r.Code != 4 || !strings.Contains(r.Stderr, "is sound") {
		t.Fatalf("second restore over a sound store: exit %d: %s", r.Code, r.Stderr)
	}
	d.Restart(t)
	list := testenv.DecodeJSON[testenv.List[fltSvc]](t, d.MustCLI(t, "service", "list", "-o", "json").Stdout)
	if list.Total != 3 {
		t.Fatalf("after restore: %d services, want 3", list.Total)
	}
	if r := d.CLI(t, "store", "check", "--data-dir", dir); r.Code != 5 || !strings.Contains(r.Stdout, "locked") {
		t.Fatalf("store check while the daemon runs: exit %d\n%s", r.Code, r.Stdout)
	}
}

// A store file deleted while its backup is left is not started empty.
func TestStoreVanishedRefusesStart(t *testing.T) {
	dir := storeDataDir(t)
	db := filepath.Join(dir, "aima.db")
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Config: storeConfig(t), DataDir: dir})
	assertRefused(t, d.StartRefused(t, refuseBound), db+" is missing, but its backup", "aima store restore --data-dir "+dir)
}

// One service record replaced by `{not json`: list, status by name,
// create, doctor and the model list work; the record is listed as damaged
// and deleted with `service delete`.
func TestStoreDamagedRecord(t *testing.T) {
	dir := storeDataDir(t)
	s, err := state.OpenBolt(filepath.Join(dir, "aima.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "services/svc-2", []byte("{not json"), state.AnyRev); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: storeConfig(t), DataDir: dir})
	type listOut struct {
		Items   []fltSvc
		Total   int
		Damaged []state.Damaged
	}
	l := testenv.DecodeJSON[listOut](t, d.MustCLI(t, "service", "list", "-o", "json").Stdout)
	if l.Total != 2 || len(l.Damaged) != 1 || l.Damaged[0].ID != "svc-2" || l.Damaged[0].Kind != "service" {
		t.Fatalf("service list: %+v", l)
	}
	if r := d.MustCLI(t, "service", "list"); !strings.Contains(r.Stderr, "aima service delete svc-2") {
		t.Fatalf("service list (table) does not warn about the damaged record: %s", r.Stderr)
	}
	if s := testenv.DecodeJSON[fltSvc](t, d.MustCLI(t, "service", "status", "svc3", "-o", "json").Stdout); s.ID != "svc-3" {
		t.Fatalf("status by name: %+v", s)
	}
	if r := d.CLI(t, "service", "status", "svc-2"); r.Code != 4 || !strings.Contains(r.Stderr, "svc-2 is damaged") {
		t.Fatalf("status of the damaged record: exit %d: %s", r.Code, r.Stderr)
	}
	doc := testenv.DecodeJSON[struct {
		Damaged  []state.Damaged
		Warnings []string
		Store    state.Info
	}](t, d.MustCLI(t, "doctor", "-o", "json").Stdout)
	if len(doc.Damaged) != 1 || len(doc.Warnings) == 0 || !strings.Contains(strings.Join(doc.Warnings, "\n"), "aima service delete svc-2") ||
		doc.Store.Path != filepath.Join(dir, "aima.db") || doc.Store.BackupAt == nil {
		t.Fatalf("doctor: %+v", doc)
	}
	if !strings.Contains(d.Logs(), "service record svc-2 is damaged") {
		t.Errorf("the daemon's start-up log does not report the damaged record")
	}
	d.MustCLI(t, "service", "create", "--model-id", "org/tiny", "--engine-type", "vllm")
	d.MustCLI(t, "model", "list")
	if code, _, err := d.Get("/api/service/list"); err != nil || code != 200 {
		t.Fatalf("GET /api/service/list: %d %v", code, err)
	}
	d.MustCLI(t, "service", "delete", "svc-2")
	l = testenv.DecodeJSON[listOut](t, d.MustCLI(t, "service", "list", "-o", "json").Stdout)
	if l.Total != 3 || len(l.Damaged) != 0 {
		t.Fatalf("after deleting the damaged record: %+v", l)
	}
}
