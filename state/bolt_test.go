package state

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"aima/errs"
)

func TestBoltReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open("", dir) // default backend: bolt at <dir>/aima.db
	if err != nil {
		t.Fatal(err)
	}
	r1 := mustPut(t, s, "a/1", "one", 0)
	mustPut(t, s, "a/2", "two", 0)
	if err := s.Delete(ctx, "a/2", AnyRev); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "aima.db")); err != nil {
		t.Fatalf("bolt file: %v", err)
	}

	s, err = Open(BackendBolt, dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	e, ok := mustGet(t, s, "a/1")
	if !ok || string(e.Value) != "one" || e.Rev != r1 {
		t.Fatalf("after reopen a/1 = %+v %v", e, ok)
	}
	if _, ok := mustGet(t, s, "a/2"); ok {
		t.Fatal("deleted key came back")
	}
	// The revision counter survives too: no reuse after restart.
	if r := mustPut(t, s, "a/3", "three", 0); r <= r1 {
		t.Fatalf("rev after reopen %d <= %d", r, r1)
	}
}

func TestBoltSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aima.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	s2, err := OpenBolt(path)
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second open of a locked store succeeded")
	}
	if errs.KindOf(err) != errs.Unavailable ||
		err.Error() != "state store "+path+" is locked by another aima process" {
		t.Fatalf("second open: %v (kind %q)", err, errs.KindOf(err))
	}
	if elapsed > 10*time.Second {
		t.Fatalf("second open took %v", elapsed)
	}
	t.Logf("second open refused after %v: %v", elapsed.Round(time.Millisecond), err)
}

// TestBoltFsyncs guards the durability setting: bbolt must fsync every
// commit, which the kill test alone cannot prove (the page cache survives a
// SIGKILL; only power loss would expose a missing fsync).
func TestBoltFsyncs(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "aima.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if db := s.(*boltStore).db; db.NoSync || db.NoGrowSync {
		t.Fatalf("bbolt NoSync=%v NoGrowSync=%v, want both false", db.NoSync, db.NoGrowSync)
	}
}

func TestBoltParentDirCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := OpenBolt(filepath.Join(dir, "aima.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
}

// Environment of the durability child process.
const (
	childEnv     = "AIMA_STATE_CHILD"
	childPathEnv = "AIMA_STATE_PATH"
)

// TestHelperWriter is not a test on its own: TestBoltDurableUnderKill runs
// the test binary again with only this test selected and AIMA_STATE_CHILD=1.
// It writes records as fast as it can and prints "ACK <key>" only after Put
// has returned, i.e. after bbolt's commit and fsync.
func TestHelperWriter(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("helper process for TestBoltDurableUnderKill")
	}
	s, err := OpenBolt(os.Getenv(childPathEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for i := range 1_000_000 { // bounded; the parent kills us long before
		key := fmt.Sprintf("rec/%07d", i)
		if _, err := s.Put(ctx, key, []byte("value-"+key), AnyRev); err != nil {
			fmt.Fprintln(os.Stderr, "put:", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stdout, "ACK %s\n", key) // os.Stdout is unbuffered
	}
	os.Exit(3)
}

// TestBoltDurableUnderKill SIGKILLs a writer process mid-stream and checks
// that every write it acknowledged is in the store after reopening.
func TestBoltDurableUnderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	const wantAcks = 200
	path := filepath.Join(t.TempDir(), "aima.db")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1", childPathEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	killed := false
	sc := bufio.NewScanner(out)
	// Read until EOF: after the kill, lines still in the pipe were
	// acknowledged too and must be durable as well. The context timeout
	// kills the child if it hangs, which also ends this loop.
	for sc.Scan() {
		key, ok := strings.CutPrefix(sc.Text(), "ACK ")
		if !ok {
			continue // e.g. test framework output
		}
		acked[key] = true
		if len(acked) == wantAcks && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
				t.Fatalf("kill: %v", err)
			}
			killed = true
		}
	}
	waitErr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acks without being killed: %v\nstderr: %s", len(acked), waitErr, stderr.String())
	}
	t.Logf("child killed after %d acknowledged writes (%v)", len(acked), waitErr)

	s, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	for key := range acked {
		e, ok := mustGet(t, s, key)
		if !ok || string(e.Value) != "value-"+key {
			t.Fatalf("acknowledged %s lost after kill: %+v %v", key, e, ok)
		}
	}
	all, err := s.List(context.Background(), "rec/")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < len(acked) {
		t.Fatalf("list: %d records, %d acknowledged", len(all), len(acked))
	}
}
