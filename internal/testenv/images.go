package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"aima/internal/filelock"
	"aima/internal/modroot"
)

// Image refs and the label that records which binary an image holds. The
// tag is AIMA_IMAGE_TAG (default "dev"), so two checkouts testing different
// simulator sources on one Docker engine never replace each other's image.
var (
	EngineSimRef = "aima-enginesim:" + imageTag()
	TestProgRef  = "aima-testprog:" + imageTag()
	HostileRef   = "aima-hostile:" + imageTag()
	AimaRef      = "aima:" + imageTag()
)

// ShaLabel holds the sha256 of the image's binary plus Dockerfile, so an
// image is rebuilt only when its source changed.
const ShaLabel = "aima.sim.sha"

func imageTag() string {
	if t := os.Getenv("AIMA_IMAGE_TAG"); t != "" {
		return t
	}
	return "dev"
}

// goImage is a FROM scratch image around one static Go binary of this module.
type goImage struct {
	pkg        string // main package import path
	bin        string // binary's file name in the build context
	ref        string
	dockerfile func(root string) ([]byte, error)
}

var (
	imagesMu sync.Mutex
	images   = map[string]func() error{} // ref -> build-once result
)

// EngineSimImage makes sure image aima-enginesim:dev exists and holds the
// simulator built from the current source (cmd/enginesim and its
// Dockerfile), building it at most once per test process, and returns its ref.
func EngineSimImage(t testing.TB) string {
	t.Helper()
	return ensureImage(t, goImage{pkg: "aima/cmd/enginesim", bin: "enginesim", ref: EngineSimRef, dockerfile: engineSimDockerfile})
}

func engineSimDockerfile(root string) ([]byte, error) {
	return os.ReadFile(filepath.Join(root, "cmd", "enginesim", "Dockerfile"))
}

// AimaImage is like EngineSimImage for the daemon's image, AimaRef: the
// binary and cmd/aima/Dockerfile, what `make image` builds.
func AimaImage(t testing.TB) string {
	t.Helper()
	return ensureImage(t, goImage{pkg: "aima/cmd/aima", bin: "aima", ref: AimaRef,
		dockerfile: func(root string) ([]byte, error) {
			return os.ReadFile(filepath.Join(root, "cmd", "aima", "Dockerfile"))
		}})
}

// TestProgImage is like EngineSimImage for internal/testenv/testprog, a tiny
// program whose output, exit code and timing a test scripts through its
// arguments (see that package's doc). Use it where exact output matters.
func TestProgImage(t testing.TB) string {
	t.Helper()
	return ensureImage(t, goImage{pkg: "aima/internal/testenv/testprog", bin: "testprog", ref: TestProgRef,
		dockerfile: func(string) ([]byte, error) {
			return []byte("FROM scratch\nCOPY testprog /testprog\nENTRYPOINT [\"/testprog\"]\n"), nil
		}})
}

// HostileEngineImage is like EngineSimImage for internal/testenv/hostile,
// an engine that answers each request with what the request's script says
// (negative usage, an event without end, a death mid-answer: see that
// package's doc), for the gateway's tests against a hostile engine. Make it
// an engine's image with SimConfigOptions.Image.
func HostileEngineImage(t testing.TB) string {
	t.Helper()
	return ensureImage(t, goImage{pkg: "aima/internal/testenv/hostile", bin: "hostile", ref: HostileRef,
		dockerfile: func(string) ([]byte, error) {
			return []byte("FROM scratch\nCOPY hostile /hostile\nENTRYPOINT [\"/hostile\"]\n"), nil
		}})
}

func ensureImage(t testing.TB, gi goImage) string {
	t.Helper()
	RequireDocker(t)
	imagesMu.Lock()
	build, ok := images[gi.ref]
	if !ok {
		build = sync.OnceValue(func() error { return buildGoImage(gi) })
		images[gi.ref] = build
	}
	imagesMu.Unlock()
	if err := build(); err != nil {
		t.Fatalf("image %s: %v", gi.ref, err)
	}
	return gi.ref
}

func buildGoImage(gi goImage) error {
	root, err := modroot.Find()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "aima-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	binPath := filepath.Join(dir, gi.bin)
	if err := goBuild(gi.pkg, binPath); err != nil {
		return err
	}
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return err
	}
	df, err := gi.dockerfile(root)
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write(bin)
	h.Write(df)
	sum := hex.EncodeToString(h.Sum(nil))

	// Concurrent test processes build an image once instead of racing (and
	// leaving the loser's image dangling); the holder's work is bounded by
	// buildTimeout, so the wait is bounded too.
	unlock, err := filelock.Lock(filepath.Join(sharedDir(), "image-"+strings.NewReplacer("/", "_", ":", "_").Replace(gi.ref)+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	c, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	old, err := c.ImageInspect(ctx, gi.ref)
	switch {
	case err == nil && old.Config != nil && old.Config.Labels[ShaLabel] == sum:
		return nil // up to date
	case err != nil && !cerrdefs.IsNotFound(err):
		return err
	}
	files := []tarFile{{name: "Dockerfile", data: df, mode: 0o644}, {name: gi.bin, data: bin, mode: 0o755}}
	if err := buildImage(ctx, c, files, gi.ref, map[string]string{ShaLabel: sum}); err != nil {
		return err
	}
	if old.ID != "" {
		// Drop the outdated image unless something still uses it (then the
		// engine refuses, which is fine).
		_, _ = c.ImageRemove(ctx, old.ID, client.ImageRemoveOptions{PruneChildren: true})
	}
	return nil
}

type tarFile struct {
	name string
	data []byte
	mode int64
}

// buildImage runs a classic (non-BuildKit) build of the context made of
// files, tags it ref and waits for the build to finish.
func buildImage(ctx context.Context, c *client.Client, files []tarFile, ref string, labels map[string]string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	res, err := c.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{ref}, Labels: labels,
		Remove: true, ForceRemove: true, Dockerfile: "Dockerfile"})
	if err != nil {
		return fmt.Errorf("build %s: %w", ref, err)
	}
	defer res.Body.Close()
	return drainJSON(res.Body, "build "+ref)
}

// drainJSON reads an engine JSON message stream to its end and returns the
// first error reported inside it.
func drainJSON(r io.Reader, what string) error {
	dec := json.NewDecoder(r)
	var log bytes.Buffer
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		log.WriteString(m.Stream)
		if m.Error != nil {
			return fmt.Errorf("%s: %s\n%s", what, m.Error.Message, log.String())
		}
	}
}

// EngineSimImageWithPadding builds ref as the simulator image plus one layer
// of size random (incompressible) bytes at /pad, so that pulling it shows
// real byte progress. The image is removed when the test ends.
func EngineSimImageWithPadding(t testing.TB, ref string, size int64) string {
	t.Helper()
	return ImageWithPadding(t, EngineSimImage(t), ref, size)
}

// ImageWithPadding builds ref as base plus a layer of size random bytes at
// /pad (see EngineSimImageWithPadding). The image is removed when the test
// ends.
func ImageWithPadding(t testing.TB, base, ref string, size int64) string {
	t.Helper()
	c := DockerClient(t)
	pad := make([]byte, size)
	_, _ = rand.Read(pad)
	files := []tarFile{
		{name: "Dockerfile", data: []byte("FROM " + base + "\nCOPY pad /pad\n"), mode: 0o644},
		{name: "pad", data: pad, mode: 0o644},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		removeImage(ctx, t, c, ref)
	})
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if err := buildImage(ctx, c, files, ref, nil); err != nil {
		t.Fatal(err)
	}
	return ref
}
