package testenv

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func TestUniqueName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]+$`) // container names and image repos
	a, b := UniqueName(t), UniqueName(t)
	if a == b || !valid.MatchString(a) || !strings.Contains(a, "testuniquename") {
		t.Errorf("names %q, %q", a, b)
	}
	t.Run("Sub/With Spaces & ÜMLAUTS", func(t *testing.T) {
		if n := UniqueName(t); !valid.MatchString(n) {
			t.Errorf("name %q", n)
		}
	})
}

// Ports for daemons and services come from below the ephemeral range (where
// no loopback connection takes them as its source port), and no two
// reservations share one: a range's lock file is taken by a second open
// file, in this process as in another.
func TestFreePortAndPortRange(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 3 {
		p := FreePort(t)
		if p < portBase || p >= low || seen[p] {
			t.Errorf("FreePort %d: want a new port in %d-%d", p, portBase, low-1)
		}
		seen[p] = true
	}
	a, b := PortRange(t, 20), PortRange(t, 250)
	if a < portBase || a+20 >= low || b < portBase || b+250 >= low {
		t.Errorf("ranges %d-%d and %d-%d: want them below %d", a, a+20, b, b+250, low)
	}
	if a <= b+250 && b <= a+20 {
		t.Errorf("ranges %d-%d and %d-%d overlap", a, a+20, b, b+250)
	}
	for p := range seen {
		if (p >= a && p <= a+20) || (p >= b && p <= b+250) {
			t.Errorf("FreePort %d lies in a reserved range", p)
		}
	}
}

func TestBuildBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a binary")
	}
	path := BuildBinary(t, "aima/internal/testenv/testprog")
	if again := BuildBinary(t, "aima/internal/testenv/testprog"); again != path {
		t.Errorf("second build at %s, first at %s", again, path)
	}
	out, err := exec.CommandContext(t.Context(), path, "out:hi", "exit:3").Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || string(out) != "hi\n" {
		t.Errorf("run: %q, %v", out, err)
	}
}

func TestStartRegistry(t *testing.T) {
	t.Parallel()
	host := StartRegistry(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+host+"/v2/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(host, "127.0.0.1:") {
		t.Errorf("%s: status %d", host, resp.StatusCode)
	}
}

func TestEngineSimImageUpToDate(t *testing.T) {
	t.Parallel()
	ref := EngineSimImage(t)
	c := DockerClient(t)
	img, err := c.ImageInspect(t.Context(), ref)
	if err != nil || img.Config == nil || len(img.Config.Labels[ShaLabel]) != 64 {
		t.Fatalf("inspect %s: %v (labels %v)", ref, err, img.Config)
	}
	// A second build from the same source keeps the image.
	gi := goImage{pkg: "aima/cmd/enginesim", bin: "enginesim", ref: ref, dockerfile: engineSimDockerfile}
	if err := buildGoImage(gi); err != nil {
		t.Fatal(err)
	}
	again, err := c.ImageInspect(t.Context(), ref)
	if err != nil || again.ID != img.ID {
		t.Errorf("image rebuilt: %s -> %s (%v)", img.ID, again.ID, err)
	}
}

func TestRemoveContainersWithLabel(t *testing.T) {
	t.Parallel()
	c := DockerClient(t)
	img := TestProgImage(t)
	name := UniqueName(t)
	var id string
	t.Run("leaves nothing", func(t *testing.T) {
		RemoveContainersWithLabel(t, "aima.test", name)
		res, err := c.ContainerCreate(t.Context(), client.ContainerCreateOptions{Name: name, Image: img,
			Config: &container.Config{Cmd: []string{"wait"}, Labels: map[string]string{"aima.test": name}}})
		if err != nil {
			t.Fatal(err)
		}
		id = res.ID
		if _, err := c.ContainerStart(t.Context(), id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	_, err := c.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if !cerrdefs.IsNotFound(err) {
		t.Errorf("container %s still there after cleanup: %v", id, err)
	}
}

func TestMedianAndPercentile(t *testing.T) {
	d := []time.Duration{5, 1, 3}
	if got := Median(d); got != 3 || d[0] != 5 {
		t.Fatalf("Median = %v (samples %v)", got, d)
	}
	if got := Median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Fatalf("even Median = %v", got)
	}
	sorted := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p50, p99 := Percentile(sorted, 0.5), Percentile(sorted, 0.99); p50 != 5 || p99 != 10 {
		t.Fatalf("p50 %v p99 %v", p50, p99)
	}
	if Ms(1500*time.Microsecond) != 1.5 {
		t.Fatal("Ms")
	}
}
