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
