package faults

import (
	"aima/internal/testenv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/state"
)

// Case 10: a damaged state store with engines running. One bad record is
// quarantined while the daemon reconciles, probes and serves the rest; a
// store emptied while its engines run is refused at start-up and restored
// from its backup, which adopts them again; a store lost altogether starts
// empty, says so loudly, and its engines are never pruned without force.

// fltDamageRecord replaces a service record with `{not json` while the
// daemon is down, through the state package the daemon uses.
func fltDamageRecord(t *testing.T, dataDir, id string) {
	t.Helper()
	s, err := state.OpenBolt(filepath.Join(dataDir, "aima.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Put(t.Context(), "services/"+id, []byte("{not json"), state.AnyRev); err != nil {
		t.Fatal(err)
	}
}

// fltStoppedWithEngine starts a fresh daemon with one running service,
// then SIGTERMs the daemon (the engine keeps running), and returns the
// daemon, the service id, its running record and the store file.
func fltStoppedWithEngine(t *testing.T) (*fltDaemon, string, fltSvc, string) {
	t.Helper()
	e := fltSetup(t)
	id := e.create(t, nil)
	before := e.startWait(t, id)
	e.d.Term(t, 15*time.Second)
	return e.d, id, before, filepath.Join(e.d.DataDir, "aima.db")
}

// fltDoctor is the part of `aima doctor -o json` these cases read.
type fltDoctor struct {
	Docker   string   `json:"docker"`
	Stranded []string `json:"stranded"`
	Orphans  []struct {
		ContainerID string `json:"container_id"`
		ServiceID   string `json:"service_id"`
		OtherStore  bool   `json:"other_store"`
	} `json:"orphans"`
	Damaged  []state.Damaged `json:"damaged"`
	Warnings []string        `json:"warnings"`
}

func (d *fltDaemon) doctor(t *testing.T) fltDoctor {
	t.Helper()
	return testenv.DecodeJSON[fltDoctor](t, d.MustCLI(t, "doctor", "-o", "json").Stdout)
}

// A bad record next to a running engine: after the restart the running
// service is adopted and not stale, Docker is reachable, the liveness probe
// still works (the engine wedges later and is failed as wedged), and the
// damaged record (whose container runs too) is listed, not an orphan, and
// deleted with its container.
func TestFaultStoreDamagedRecord(t *testing.T) {
	e := fltSetup(t)
	d := e.d
	fltEach(t, func(t *testing.T, rep int) {
		// The engine wedges 8 s after it is ready (160 s at time scale 0.05).
		live := e.create(t, map[string]string{"SIM_FAIL": "wedge-after", "SIM_FAIL_AFTER": "160s"})
		bad := e.create(t, nil)
		badRun := e.startWait(t, bad)
		before := e.startWait(t, live)
		d.Term(t, 15*time.Second)
		fltDamageRecord(t, d.DataDir, bad)
		d.Restart(t)

		s := d.mustStatus(t, live)
		if s.Status != "running" || s.Stale || s.ContainerID != before.ContainerID {
			t.Fatalf("after the restart: %v, want running in %.12s and not stale", s, before.ContainerID)
		}
		var health struct{ Docker string }
		if code := d.DaemonProc.GetJSON(t, "/health", &health); code != 200 || health.Docker != "ok" {
			t.Fatalf("/health: %d %+v", code, health)
		}
		type listOut struct {
			Items   []fltSvc
			Damaged []state.Damaged
		}
		l := testenv.DecodeJSON[listOut](t, d.MustCLI(t, "service", "list", "-o", "json").Stdout)
		found := false
		for _, x := range l.Items {
			found = found || x.ID == live
			if x.Stale {
				t.Errorf("service %s is stale while Docker is reachable", x.ID)
			}
		}
		if !found || len(l.Damaged) != 1 || l.Damaged[0].ID != bad {
			t.Fatalf("service list: %+v", l)
		}
		doc := d.doctor(t)
		if doc.Docker != "ok" || len(doc.Damaged) != 1 {
			t.Fatalf("doctor: %+v", doc)
		}
		for _, o := range doc.Orphans {
			if o.ServiceID == bad {
				t.Fatalf("the damaged record's container is listed as an orphan: %+v", o)
			}
		}
		// The liveness probe runs: the wedged engine becomes unhealthy,
		// then failed as wedged.
		s = d.waitStatus(t, live, 60*time.Second, "failed")
		if !strings.Contains(s.Reason, "wedged") {
			t.Errorf("reason %q: want the liveness probe's wedged", s.Reason)
		}
		d.MustCLI(t, "service", "delete", bad)
		if cs := fltContainers(t, bad); len(cs) != 0 {
			t.Fatalf("the damaged record's container %.12s survived its delete: %+v", badRun.ContainerID, cs)
		}
		if l := testenv.DecodeJSON[listOut](t, d.MustCLI(t, "service", "list", "-o", "json").Stdout); len(l.Damaged) != 0 {
			t.Fatalf("after delete: damaged %+v", l.Damaged)
		}
	})
}

// aima.db emptied (0 bytes) while its engine runs: the next start is
// refused with a clear error, the engine keeps running, and `aima store
// restore` brings back the record, which the next daemon adopts.
func TestFaultStoreEmptiedWhileRunning(t *testing.T) {
	fltEach(t, func(t *testing.T, rep int) {
		d, id, before, db := fltStoppedWithEngine(t)
		if err := os.Truncate(db, 0); err != nil {
			t.Fatal(err)
		}
		r := d.StartRefused(t, time.Minute)
		assertRefused(t, r, db, "is damaged (empty)", "aima store restore --data-dir "+d.DataDir)
		if !fltInspect(t, before.ContainerID).Running {
			t.Fatal("the engine stopped when the store was lost")
		}
		d.MustCLI(t, "store", "restore", "--data-dir", d.DataDir)
		d.Restart(t)
		s := d.mustStatus(t, id)
		if s.Status != "running" || s.ContainerID != before.ContainerID || s.Stale {
			t.Fatalf("after restore: %v, want running in %.12s", s, before.ContainerID)
		}
		fltAssertOneContainer(t, s)
		d.assertNoOrphans(t, id)
	})
}

// The whole store lost (aima.db and its backup): the daemon starts empty
// and says loudly that aima's containers exist which it did not create;
// doctor marks them other_store; prune keeps them (only --force removes
// them).
func TestFaultStoreLost(t *testing.T) {
	fltEach(t, func(t *testing.T, rep int) {
		d, id, before, db := fltStoppedWithEngine(t)
		for _, f := range []string{db, state.BackupPath(db)} {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		d.Restart(t)
		if !strings.Contains(d.Logs(), "began empty at this start") {
			t.Errorf("the daemon did not report the lost store at start-up")
		}
		doc := d.doctor(t)
		var mine bool
		for _, o := range doc.Orphans {
			if o.ServiceID == id {
				mine = true
				if !o.OtherStore {
					t.Errorf("the lost store's container is not marked other_store: %+v", o)
				}
			}
		}
		if !mine || !strings.Contains(strings.Join(doc.Warnings, "\n"), "--force") {
			t.Fatalf("doctor after the store was lost: %+v", doc)
		}
		pruned := testenv.DecodeJSON[struct {
			Items []struct {
				ServiceID string `json:"service_id"`
			}
			Kept []struct {
				ServiceID string `json:"service_id"`
			}
		}](t, d.MustCLI(t, "service", "prune", "-o", "json").Stdout)
		for _, o := range pruned.Items {
			if o.ServiceID == id {
				t.Fatal("prune without --force removed the lost store's container")
			}
		}
		if !fltInspect(t, before.ContainerID).Running {
			t.Fatal("the lost store's engine does not run after prune")
		}
		kept := false
		for _, o := range pruned.Kept {
			kept = kept || o.ServiceID == id
		}
		if !kept {
			t.Fatalf("prune does not report the kept container: %+v", pruned)
		}
		// `prune --force` is not run here: the daemon sees every aima
		// container on the host, other tests' included (services'
		// TestPruneKeepsOtherStoresContainers covers force).
	})
}
