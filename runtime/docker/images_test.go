package docker

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"aima/errs"
	"aima/internal/testenv"
	"aima/runtime"
)

// pullBase is the image the pull test pads and pushes: the simulator, unless
// AIMA_TEST_PULL_BASE=testprog selects the tiny test program.
func pullBase(t *testing.T) string {
	if os.Getenv("AIMA_TEST_PULL_BASE") == "testprog" {
		return testenv.TestProgImage(t)
	}
	return testenv.EngineSimImage(t)
}

func TestPullImageProgress(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const padSize = 24 << 20
	reg := testenv.StartRegistry(t, testenv.WithBandwidth(16<<20)) // ~1.5 s for the pad layer
	padded := testenv.ImageWithPadding(t, pullBase(t), f.name+":padded", padSize)
	ref := fmt.Sprintf("%s/aima/%s:1", reg, f.name)
	testenv.PushToRegistry(t, padded, ref)
	testenv.RemoveImage(t, padded)
	testenv.RemoveImage(t, ref)
	if ok, err := f.d.ImageExists(t.Context(), ref); ok || err != nil {
		t.Fatalf("before pull: exists=%v, %v", ok, err)
	}

	var msgs []runtime.PullProgress
	if err := f.d.PullImage(t.Context(), ref, runtime.PullOptions{Progress: func(p runtime.PullProgress) { msgs = append(msgs, p) }}); err != nil {
		t.Fatal(err)
	}
	var downloading, maxTotal, lastCurrent int64
	layers := map[string]bool{}
	for _, m := range msgs {
		if m.Layer != "" {
			layers[m.Layer] = true
		}
		if m.Status == "Downloading" && m.Total > 0 && m.Current > 0 {
			downloading++
			maxTotal = max(maxTotal, m.Total)
			lastCurrent = max(lastCurrent, m.Current)
		}
	}
	t.Logf("pull of %s: %d messages, %d layers, %d Downloading messages with bytes, largest layer %d bytes, max current %d",
		ref, len(msgs), len(layers), downloading, maxTotal, lastCurrent)
	for i, m := range msgs {
		if i < 5 || i >= len(msgs)-5 {
			t.Logf("  %+v", m)
		}
	}
	if downloading < 3 || maxTotal < padSize || lastCurrent < padSize/2 {
		t.Errorf("want byte progress for the %d-byte pad layer", padSize)
	}
	if ok, err := f.d.ImageExists(t.Context(), ref); !ok || err != nil {
		t.Errorf("after pull: exists=%v, %v", ok, err)
	}
	// A second pull finds everything present.
	if err := f.d.PullImage(t.Context(), ref, runtime.PullOptions{}); err != nil {
		t.Errorf("second pull: %v", err)
	}
}

func TestPullImageErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reg := testenv.StartRegistry(t)

	err := f.d.PullImage(t.Context(), reg+"/aima/missing:1", runtime.PullOptions{})
	wantKind(t, err, errs.NotFound, reg+"/aima/missing:1")
	t.Logf("missing image: %v", err)

	dead := fmt.Sprintf("127.0.0.1:%d/aima/x:1", testenv.FreePort(t))
	err = f.d.PullImage(t.Context(), dead, runtime.PullOptions{})
	wantKind(t, err, errs.Unavailable, dead)
	t.Logf("unreachable registry: %v", err)

	err = f.d.PullImage(t.Context(), "Not//A:Valid:Ref", runtime.PullOptions{})
	wantKind(t, err, errs.InvalidArgument)

	ok, err := f.d.ImageExists(t.Context(), "aima-no-such-image:never")
	if ok || err != nil {
		t.Errorf("missing image exists=%v, %v", ok, err)
	}
}

func TestPullImageCanceled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reg := testenv.StartRegistry(t, testenv.WithBandwidth(4<<20))
	padded := testenv.ImageWithPadding(t, pullBase(t), f.name+":padded", 16<<20)
	ref := fmt.Sprintf("%s/aima/%s:1", reg, f.name)
	testenv.PushToRegistry(t, padded, ref)
	testenv.RemoveImage(t, padded)
	testenv.RemoveImage(t, ref)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var canceledAt time.Time
	err := f.d.PullImage(ctx, ref, runtime.PullOptions{Progress: func(p runtime.PullProgress) {
		if p.Status == "Downloading" && canceledAt.IsZero() {
			canceledAt = time.Now()
			cancel()
		}
	}})
	if canceledAt.IsZero() {
		t.Fatalf("pull ended before any download progress: %v", err)
	}
	wantKind(t, err, errs.Canceled)
	t.Logf("canceled pull returned %v after cancel: %v", time.Since(canceledAt), err)
	if d := time.Since(canceledAt); d > 2*time.Second {
		t.Errorf("PullImage returned %v after cancel", d)
	}
}
