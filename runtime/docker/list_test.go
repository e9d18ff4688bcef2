package docker

import (
	"slices"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/runtime"
)

func TestListContainers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	img := testenv.TestProgImage(t)
	before := time.Now().Add(-2 * time.Second)

	running := f.spec(img, "wait")
	running.ContainerPort = 8000
	runningID := f.run(t, running)
	exited := f.spec(img, "exit:7")
	exitedID := f.run(t, exited)
	if code := f.waitExit(t, exitedID); code != 7 {
		t.Fatalf("exit %d", code)
	}
	created := f.spec(img)
	created.Labels = map[string]string{testLabel: f.name, runtime.LabelManaged: "false"}
	createdID, err := f.d.CreateContainer(t.Context(), created)
	if err != nil {
		t.Fatal(err)
	}

	all, err := f.d.ListContainers(t.Context(), runtime.ListOptions{Labels: map[string]string{testLabel: f.name}})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]runtime.ContainerState{}
	for _, c := range all {
		byID[c.ID] = c
	}
	if len(all) != 3 || len(byID) != 3 {
		t.Fatalf("listed %d containers, want 3: %+v", len(all), all)
	}
	r := byID[runningID]
	if r.Name != running.Name || r.Image != img || !r.Running || r.Status != "running" || r.HostPort == 0 ||
		r.Labels[testLabel] != f.name || r.CreatedAt.Before(before) {
		t.Errorf("running: %+v", r)
	}
	if e := byID[exitedID]; e.Running || e.Status != "exited" || e.ExitCode != 7 || e.HostPort != 0 {
		t.Errorf("exited: %+v", e)
	}
	if c := byID[createdID]; c.Running || c.Status != "created" || c.Name != created.Name {
		t.Errorf("created: %+v", c)
	}

	// Every label pair must match.
	managed, err := f.d.ListContainers(t.Context(), runtime.ListOptions{Labels: map[string]string{testLabel: f.name, runtime.LabelManaged: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, c := range managed {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	want := []string{runningID, exitedID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("managed = %v, want %v", ids, want)
	}
	none, err := f.d.ListContainers(t.Context(), runtime.ListOptions{Labels: map[string]string{testLabel: f.name + "-nobody"}})
	if err != nil || len(none) != 0 {
		t.Errorf("unknown label: %v, %v", none, err)
	}
}
