//go:build unix

package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/errs"
	"aima/internal/testenv/specialfiles"
	"aima/state"
)

// hangGuard bounds calls that used to block forever (a FIFO opened for
// reading waits for a writer): a guard against a hung test, not a timing
// assertion.
const hangGuard = 20 * time.Second

// within runs fn and fails the test if it has not returned after hangGuard.
func within[T any](t *testing.T, what string, fn func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("%s still blocked after %s", what, hangGuard)
		panic("unreachable")
	}
}

// Each hostile path is refused with invalid_argument on "path", naming the
// path and what it is, without blocking and without reading a device.
func TestInspectRefusesSpecialFiles(t *testing.T) {
	set := specialfiles.Make(t)
	want := map[string]string{
		"FIFO x.gguf":                        "FIFO",
		"character device dev.gguf":          "character device",
		"FIFO config.json":                   "FIFO",
		"config.json symlinked to /dev/zero": "character device",
	}
	for name, path := range set.Hostile() {
		t.Run(name, func(t *testing.T) {
			err := within(t, "Inspect("+path+")", func() error {
				_, err := Inspect(t.Context(), path)
				return err
			})
			if errs.KindOf(err) != errs.InvalidArgument || errs.FieldOf(err) != "path" {
				t.Fatalf("Inspect(%s) = %v, want invalid_argument on path", path, err)
			}
			if !strings.Contains(err.Error(), want[name]) || !strings.Contains(err.Error(), "not a regular file") {
				t.Fatalf("Inspect(%s) = %q, want it to say it is a %s, not a regular file", path, err, want[name])
			}
			t.Logf("%s: %v", name, err)
		})
	}
	m, err := Inspect(t.Context(), set.Good)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.Stat(filepath.Join(set.Good, "config.json"))
	if m.SizeBytes != cfg.Size()+1000 {
		t.Fatalf("size of the sound model = %d, want %d: only regular files count (a FIFO and a /dev/zero link sit beside them)", m.SizeBytes, cfg.Size()+1000)
	}
}

func TestReadMetadata(t *testing.T) {
	set := specialfiles.Make(t)
	cfg := filepath.Join(set.Good, "config.json")
	b, err := ReadMetadata(cfg, 0)
	if err != nil || !strings.Contains(string(b), "Qwen2ForCausalLM") {
		t.Fatalf("ReadMetadata(config.json) = %q, %v", b, err)
	}
	if _, err := ReadMetadata(cfg, 10); errs.KindOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("ReadMetadata over its limit = %v, want invalid_argument saying it is too large", err)
	}
	link := filepath.Join(t.TempDir(), "index.json")
	if err := os.Symlink(cfg, link); err != nil {
		t.Fatal(err)
	}
	if b2, err := ReadMetadata(link, 0); err != nil || string(b2) != string(b) {
		t.Fatalf("ReadMetadata through a symlink to a regular file = %q, %v", b2, err)
	}
	for _, p := range []string{filepath.Join(set.FIFOConfig, "config.json"), filepath.Join(set.ZeroConfig, "config.json"), set.DevGGUF, set.Dir} {
		err := within(t, "ReadMetadata("+p+")", func() error { _, err := ReadMetadata(p, 0); return err })
		if errs.KindOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), p) {
			t.Errorf("ReadMetadata(%s) = %v, want invalid_argument naming it", p, err)
		}
	}
	f, st, err := OpenRegular(cfg)
	if err != nil || st.Size() != int64(len(b)) {
		t.Fatalf("OpenRegular = %v, %v", st, err)
	}
	_ = f.Close()
	if _, err := StatRegular(set.FIFOGGUF); errs.KindOf(err) != errs.InvalidArgument {
		t.Fatalf("StatRegular(FIFO) = %v", err)
	}
}

// A scan of a directory holding every hostile file registers the sound
// model and skips the rest with a note each; it never opens a special file.
func TestScanSkipsSpecialFiles(t *testing.T) {
	set := specialfiles.Make(t)
	reg := NewRegistry(state.NewMemory())
	type out struct {
		res ScanResult
		err error
	}
	o := within(t, "Scan", func() out { r, err := reg.Scan(t.Context(), set.Dir); return out{r, err} })
	if o.err != nil {
		t.Fatal(o.err)
	}
	if len(o.res.Found) != 1 || o.res.Found[0].Path != set.Good {
		t.Fatalf("Scan found %+v, want only %s", o.res.Found, set.Good)
	}
	skipped := map[string]string{}
	for _, s := range o.res.Skipped {
		skipped[s.Path] = s.Reason
	}
	for name, p := range set.Hostile() {
		if r, ok := skipped[p]; !ok || !strings.Contains(r, "not a regular file") {
			t.Errorf("%s (%s): skipped with %q, want a note that it is not a regular file; all: %+v", name, p, r, o.res.Skipped)
		}
	}
}

// The thread-exhaustion finding, scaled down: many concurrent adds of a
// FIFO all answer invalid_argument, none waits for a writer.
func TestConcurrentFIFOAddsAllAnswer(t *testing.T) {
	set := specialfiles.Make(t)
	reg := NewRegistry(state.NewMemory())
	const n = 200
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := reg.Add(t.Context(), set.FIFOGGUF, "")
			errc <- err
		}()
	}
	within(t, "200 concurrent FIFO adds", func() bool { wg.Wait(); return true })
	close(errc)
	for err := range errc {
		if errs.KindOf(err) != errs.InvalidArgument {
			t.Fatalf("add of a FIFO = %v, want invalid_argument", err)
		}
	}
}

// onDisk gives up at its bound with deadline_exceeded naming the work, and
// passes the caller's cancellation through; a slot is freed when the
// stalled work ends.
func TestOnDiskBound(t *testing.T) {
	release := make(chan struct{})
	_, err := onDisk(t.Context(), 20*time.Millisecond, "inspecting /stalled", func(ctx context.Context) (int, error) {
		<-release
		return 0, nil
	})
	close(release)
	if errs.KindOf(err) != errs.DeadlineExceeded || !strings.Contains(err.Error(), "/stalled") {
		t.Fatalf("stalled work = %v, want deadline_exceeded naming it", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := onDisk(ctx, time.Minute, "x", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller = %v, want context.Canceled", err)
	}
	v, err := onDisk(t.Context(), time.Minute, "x", func(context.Context) (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Fatalf("onDisk = %d, %v", v, err)
	}
}

// A damaged model record is listed apart, refused by Get, removable, and
// replaced by a fresh add of its path.
func TestDamagedModelRecord(t *testing.T) {
	ctx := t.Context()
	s := state.NewMemory()
	reg := NewRegistry(s)
	set := specialfiles.Make(t)
	good, err := reg.Add(ctx, set.Good, "good")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "models/"+good.ID, []byte("{not json"), state.AnyRev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "models/m-other", []byte(`{"id":"m-other","name":"other","path":"/x"}`), state.AnyRev); err != nil {
		t.Fatal(err)
	}
	all, err := reg.List(ctx)
	if err != nil || len(all) != 1 || all[0].ID != "m-other" {
		t.Fatalf("List = %+v, %v: want the readable record only", all, err)
	}
	bad, err := reg.Damaged(ctx)
	if err != nil || len(bad) != 1 || bad[0].ID != good.ID || bad[0].Kind != "model" {
		t.Fatalf("Damaged = %+v, %v", bad, err)
	}
	if _, err := reg.Get(ctx, good.ID); errs.KindOf(err) != errs.Conflict || !state.IsDamaged(err) {
		t.Fatalf("Get(damaged) = %v, want a conflict that says it is damaged", err)
	}
	if got, err := reg.Get(ctx, "other"); err != nil || got.ID != "m-other" {
		t.Fatalf("Get by name beside a damaged record = %+v, %v", got, err)
	}
	again, err := reg.Add(ctx, set.Good, "")
	if err != nil || again.ID != good.ID || again.Format != "hf" {
		t.Fatalf("re-adding the damaged model's path = %+v, %v: want it replaced", again, err)
	}
	if _, err := s.Put(ctx, "models/"+good.ID, []byte("null"), state.AnyRev); err != nil {
		t.Fatal(err)
	}
	if m, err := reg.Remove(ctx, good.ID); err != nil || m.ID != good.ID {
		t.Fatalf("Remove(damaged) = %+v, %v", m, err)
	}
	if bad, _ := reg.Damaged(ctx); len(bad) != 0 {
		t.Fatalf("after Remove: damaged %+v", bad)
	}
}
