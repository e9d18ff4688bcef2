package docker

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"aima/errs"
	"aima/internal/testenv"
	"aima/runtime"
)

func TestCreateStartInspect(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	spec := f.spec(testenv.TestProgImage(t), "out:up", "listen:8000", "wait")
	spec.ContainerPort = 8000
	spec.Env = []string{"AIMA_TEST=1"}
	spec.ShmSize = 64 << 20
	spec.Mounts = []runtime.Mount{{Source: t.TempDir(), Target: "/models", ReadOnly: true}}
	before := time.Now().Add(-time.Second)
	id := f.run(t, spec)

	st, err := f.d.InspectContainer(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != id || st.Name != spec.Name || st.Image != spec.Image || !st.Running || st.Status != "running" {
		t.Errorf("state %+v", st)
	}
	if st.Labels[testLabel] != f.name || st.Labels[runtime.LabelManaged] != "true" {
		t.Errorf("labels %v", st.Labels)
	}
	if st.HostPort == 0 || st.StartedAt.Before(before) || !st.FinishedAt.IsZero() || st.CreatedAt.Before(before) {
		t.Errorf("ports/times %+v", st)
	}
	// The published port reaches the container's server.
	resp, err := httpGetRetry(t, fmt.Sprintf("http://127.0.0.1:%d/", st.HostPort))
	if err != nil {
		t.Fatalf("GET published port: %v", err)
	}
	if resp != "ok" {
		t.Errorf("GET = %q", resp)
	}

	raw, err := f.raw.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc := raw.Container.HostConfig
	if hc.ShmSize != spec.ShmSize || len(hc.Mounts) != 1 || !hc.Mounts[0].ReadOnly || hc.Mounts[0].Target != "/models" {
		t.Errorf("host config: shm %d mounts %+v", hc.ShmSize, hc.Mounts)
	}
	if rp := hc.RestartPolicy.Name; rp != "" && rp != "no" {
		t.Errorf("restart policy %q, want none", rp)
	}
	for p, bs := range hc.PortBindings {
		if p.Num() != 8000 || len(bs) != 1 || bs[0].HostIP.String() != "127.0.0.1" || bs[0].HostPort != "" {
			t.Errorf("port binding %v: %+v", p, bs)
		}
	}
	if len(hc.DeviceRequests) != 0 {
		t.Errorf("device requests %+v, want none", hc.DeviceRequests)
	}
	if env := raw.Container.Config.Env; len(env) == 0 || env[0] != "AIMA_TEST=1" {
		t.Errorf("env %v", env)
	}
}

// httpGetRetry polls url until the server answers (the program starts its
// listener a moment after the container starts).
func httpGetRetry(t *testing.T, url string) (string, error) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), err
		}
		select {
		case <-tick.C:
		case <-deadline:
			return "", err
		}
	}
}

func TestGPURequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	uuid := "GPU-00000000-0000-4000-8000-000000000001"
	for _, tc := range []struct {
		gpus      runtime.GPURequest
		driver    string // "" = no device request
		count     int
		deviceIDs []string
	}{
		{runtime.GPURequest{All: true}, "nvidia", -1, nil},
		{runtime.GPURequest{DeviceIDs: []string{"0", "2"}}, "nvidia", 0, []string{"0", "2"}},
		{runtime.GPURequest{DeviceIDs: []string{uuid}, Attach: runtime.GPUAttachDeviceRequests}, "nvidia", 0, []string{uuid}},
		{runtime.GPURequest{Count: 2}, "nvidia", 2, nil},
		{runtime.GPURequest{DeviceIDs: []string{uuid}, Attach: runtime.GPUAttachCDI}, "cdi", 0, []string{"nvidia.com/gpu=" + uuid}},
		{runtime.GPURequest{DeviceIDs: []string{uuid}, Attach: runtime.GPUAttachEnv}, "", 0, nil},
	} {
		spec := f.spec(testenv.TestProgImage(t))
		spec.GPUs = tc.gpus
		id, err := f.d.CreateContainer(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := f.raw.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dr := raw.Container.HostConfig.DeviceRequests
		if tc.driver == "" {
			if len(dr) != 0 {
				t.Errorf("%+v: device requests %+v, want none", tc.gpus, dr)
			}
			continue
		}
		caps := "[[gpu]]"
		if tc.driver == "cdi" {
			caps = "[]"
		}
		if len(dr) != 1 || dr[0].Driver != tc.driver || dr[0].Count != tc.count ||
			fmt.Sprint(dr[0].DeviceIDs) != fmt.Sprint(tc.deviceIDs) || fmt.Sprint(dr[0].Capabilities) != caps {
			t.Errorf("%+v: device requests %+v", tc.gpus, dr)
		}
		// Without the NVIDIA runtime the engine refuses to start it; with
		// it the container starts. Either way the answer must be clean.
		if err := f.d.StartContainer(t.Context(), id); err != nil {
			t.Logf("start with GPUs on this host: %v (kind %s)", err, errs.KindOf(err))
			wantKind(t, err, errs.Unavailable, "could not select device driver")
		}
	}
}

func TestStopRemove(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.runReady(t, "wait")
	start := time.Now()
	if err := f.d.StopContainer(t.Context(), id, runtime.StopOptions{Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop took %v: SIGTERM not delivered?", d)
	}
	st, err := f.d.InspectContainer(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Status != "exited" || st.ExitCode != 0 || st.FinishedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("after stop: %+v", st)
	}
	if err := f.d.StopContainer(t.Context(), id, runtime.StopOptions{Timeout: time.Second}); err != nil {
		t.Errorf("stopping a stopped container: %v", err)
	}
	if err := f.d.RemoveContainer(t.Context(), id, runtime.RemoveOptions{Force: false}); err != nil {
		t.Fatal(err)
	}
	_, err = f.d.InspectContainer(t.Context(), id)
	wantKind(t, err, errs.NotFound, id)
	wantKind(t, f.d.RemoveContainer(t.Context(), id, runtime.RemoveOptions{Force: true}), errs.NotFound, id)
	wantKind(t, f.d.StopContainer(t.Context(), id, runtime.StopOptions{Timeout: time.Second}), errs.NotFound, id)

	// force removes a running container.
	id = f.run(t, f.spec(testenv.TestProgImage(t), "wait"))
	if err := f.d.RemoveContainer(t.Context(), id, runtime.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const id = "aima-no-such-container-4711"
	_, err := f.d.InspectContainer(t.Context(), id)
	wantKind(t, err, errs.NotFound, id)
	wantKind(t, f.d.StartContainer(t.Context(), id), errs.NotFound, id)
	st := <-f.d.WaitExit(t.Context(), id)
	wantKind(t, st.Err, errs.NotFound, id)
	wantKind(t, f.d.Logs(t.Context(), id, runtime.LogOptions{Tail: -1}, func(runtime.LogLine) error { return nil }), errs.NotFound, id)
	_, err = f.d.CreateContainer(t.Context(), f.spec("aima-no-such-image:never"))
	wantKind(t, err, errs.NotFound, "aima-no-such-image:never")
}

func TestConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	img := testenv.TestProgImage(t)
	spec := f.spec(img, "wait")
	if _, err := f.d.CreateContainer(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	_, err := f.d.CreateContainer(t.Context(), spec)
	wantKind(t, err, errs.Conflict, spec.Name, "already in use")

	// A host port held by another container.
	port := testenv.FreePort(t)
	a := f.spec(img, "wait")
	a.ContainerPort, a.HostPort = 8000, port
	f.run(t, a)
	b := f.spec(img, "wait")
	b.ContainerPort, b.HostPort = 8000, port
	id, err := f.d.CreateContainer(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	err = f.d.StartContainer(t.Context(), id)
	wantKind(t, err, errs.Conflict, fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", port))
	t.Logf("port held by a container: %v", err)

	// A host port held by a host process.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := f.spec(img, "wait")
	c.ContainerPort, c.HostPort = 8000, l.Addr().(*net.TCPAddr).Port
	if id, err = f.d.CreateContainer(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	err = f.d.StartContainer(t.Context(), id)
	wantKind(t, err, errs.Conflict, "address already in use")
	t.Logf("port held by a host process: %v", err)
}

// Concurrent forced removals of one running container: Docker answers all
// but one with 409 "removal … is already in progress" while the first is
// under way. RemoveContainer waits for that removal instead, so every call
// succeeds, or says the container is not there when it asked only after
// the removal had finished; none is refused.
func TestRemovalInProgressIsAwaited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const containers, callers = 4, 6
	waited := 0
	for range containers {
		id := f.run(t, f.spec(testenv.TestProgImage(t), "wait"))
		var wg sync.WaitGroup
		errc := make(chan error, callers)
		gate := make(chan struct{})
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				errc <- f.d.RemoveContainer(t.Context(), id, runtime.RemoveOptions{Force: true})
			}()
		}
		close(gate)
		wg.Wait()
		close(errc)
		succeeded := 0
		for err := range errc {
			switch {
			case err == nil:
				succeeded++
			case !errs.Is(err, errs.NotFound):
				t.Errorf("remove %.12s: %v", id, err)
			}
		}
		waited += succeeded - 1
		if _, err := f.d.InspectContainer(t.Context(), id); !errs.Is(err, errs.NotFound) {
			t.Errorf("container %.12s after the removals: %v", id, err)
		}
	}
	t.Logf("%d of %d concurrent removals waited for the one in progress", waited, containers*(callers-1))
	if waited == 0 {
		t.Error("no removal met another in progress: the race was not reproduced")
	}
}
