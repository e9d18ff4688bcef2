package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// cleanupTimeout bounds cleanup calls: t.Context() is already canceled when
// cleanups run, so they use their own deadline.
const cleanupTimeout = 30 * time.Second

var (
	dockerMu sync.Mutex
	dockerOK bool
)

// RequireDocker fails the test with a clear message when no Docker engine
// answers (from DOCKER_HOST or the default socket). In -short mode it skips
// instead, so `go test -short ./...` runs without Docker.
func RequireDocker(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a Docker engine; skipped in -short mode")
	}
	dockerMu.Lock()
	defer dockerMu.Unlock()
	if dockerOK {
		return
	}
	c, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		_ = c.Close()
	}
	if err != nil {
		t.Fatalf("Docker engine not reachable: %v\n"+
			"This integration test needs Docker. Start it (bash .ci/docker-up.sh) or run `go test -short` to skip such tests.", err)
	}
	dockerOK = true
}

// DockerClient returns a moby client for test setup and inspection (after
// RequireDocker), closed when the test ends.
func DockerClient(t testing.TB) *client.Client {
	t.Helper()
	RequireDocker(t)
	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// RemoveContainersWithLabel registers a cleanup that force-removes every
// container carrying label key=value, so an integration test leaves nothing
// behind even when it fails halfway. Call it before creating containers.
func RemoveContainersWithLabel(t testing.TB, key, value string) {
	t.Helper()
	c := DockerClient(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		res, err := c.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: make(client.Filters).Add("label", key+"="+value)})
		if err != nil {
			t.Errorf("cleanup: list containers %s=%s: %v", key, value, err)
			return
		}
		for _, s := range res.Items {
			_, err := c.ContainerRemove(ctx, s.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
				t.Errorf("cleanup: remove container %s: %v", s.ID, err)
			}
		}
	})
}

// RemoveImage force-removes ref now (a missing image is fine). Tests use it
// to make a later pull really download.
func RemoveImage(t testing.TB, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	removeImage(ctx, t, DockerClient(t), ref)
}

func removeImage(ctx context.Context, t testing.TB, c *client.Client, ref string) {
	t.Helper()
	_, err := c.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("remove image %s: %v", ref, err)
	}
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_.-]+`)

// UniqueName returns a name for containers, labels or image tags that is
// unique per call and still tells which test made it: the lower-cased test
// name with anything outside [a-z0-9_.-] replaced, plus a random suffix.
func UniqueName(t testing.TB) string {
	name := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-_.")
	if len(name) > 40 {
		name = name[:40]
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "aimatest-" + name + "-" + hex.EncodeToString(b)
}

// DockerSocket is the path of the Docker engine's Unix socket (from
// DOCKER_HOST, or the default), for a SockProxy in front of it. A
// DOCKER_HOST that is not a Unix socket skips the test.
func DockerSocket(t testing.TB) string {
	t.Helper()
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		if p, ok := strings.CutPrefix(h, "unix://"); ok {
			return p
		}
		t.Skipf("DOCKER_HOST=%s is not a Unix socket; the test needs one", h)
	}
	return "/var/run/docker.sock"
}
