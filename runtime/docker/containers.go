package docker

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"aima/errs"
	"aima/runtime"
)

// defaultHostIP keeps engine ports off the network unless asked: an inference
// server has no authentication by default.
const defaultHostIP = "127.0.0.1"

// CreateContainer creates (but does not start) a container from spec. Args
// become Cmd, so they are appended to the image's ENTRYPOINT. There is no
// restart policy: aima decides about restarts itself.
func (d *Docker) CreateContainer(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	cfg := &container.Config{Image: spec.Image, Cmd: spec.Args, Env: spec.Env, Labels: spec.Labels}
	hc := &container.HostConfig{ShmSize: spec.ShmSize}
	hc.Memory = spec.MemoryLimit
	if spec.ContainerPort > 0 {
		port, err := network.ParsePort(fmt.Sprintf("%d/tcp", spec.ContainerPort))
		if err != nil {
			return "", errs.Invalid("container_port", "container port %d: %v", spec.ContainerPort, err)
		}
		hostIP := spec.HostIP
		if hostIP == "" {
			hostIP = defaultHostIP
		}
		ip, err := netip.ParseAddr(hostIP)
		if err != nil {
			return "", errs.Invalid("host_ip", "host IP %q: %v", spec.HostIP, err)
		}
		hostPort := "" // empty lets the engine pick a free port
		if spec.HostPort > 0 {
			hostPort = strconv.Itoa(spec.HostPort)
		}
		cfg.ExposedPorts = network.PortSet{port: {}}
		hc.PortBindings = network.PortMap{port: {{HostIP: ip, HostPort: hostPort}}}
	}
	for _, m := range spec.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	if gpu := deviceRequest(spec.GPUs); gpu != nil {
		hc.DeviceRequests = []container.DeviceRequest{*gpu}
	}
	release, err := d.slot(ctx, "create container "+spec.Name)
	if err != nil {
		return "", err
	}
	defer release()
	res, err := d.c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: spec.Name, Config: cfg, HostConfig: hc})
	if err != nil {
		return "", classify(err, fmt.Sprintf("create container %s from image %s", spec.Name, spec.Image))
	}
	return res.ID, nil
}

// deviceRequest turns a GPU request into the device request that `docker
// run --gpus` sends (driver nvidia), or CDI device names (driver cdi); nil
// when no GPU is wanted or the GPUs are attached through the environment
// alone (NVIDIA_VISIBLE_DEVICES, set by the caller in every mode).
func deviceRequest(g runtime.GPURequest) *container.DeviceRequest {
	if g.Attach == runtime.GPUAttachEnv {
		return nil
	}
	if g.Attach == runtime.GPUAttachCDI {
		var ids []string
		switch {
		case g.All:
			ids = []string{"nvidia.com/gpu=all"}
		default:
			for _, id := range g.DeviceIDs {
				ids = append(ids, "nvidia.com/gpu="+id)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		return &container.DeviceRequest{Driver: "cdi", DeviceIDs: ids}
	}
	switch {
	case g.All:
		return &container.DeviceRequest{Driver: "nvidia", Count: -1, Capabilities: [][]string{{"gpu"}}}
	case len(g.DeviceIDs) > 0:
		return &container.DeviceRequest{Driver: "nvidia", DeviceIDs: slices.Clone(g.DeviceIDs), Capabilities: [][]string{{"gpu"}}}
	case g.Count > 0:
		return &container.DeviceRequest{Driver: "nvidia", Count: g.Count, Capabilities: [][]string{{"gpu"}}}
	}
	return nil
}

// StartContainer starts a created container. A host port taken by someone
// else fails here (not at create) and comes back as errs.Conflict.
func (d *Docker) StartContainer(ctx context.Context, id string) error {
	release, err := d.slot(ctx, "start container "+id)
	if err != nil {
		return err
	}
	defer release()
	_, err = d.c.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return classify(err, "start container "+id)
}

// InspectContainer reports the container's full state. HostPort is the
// published host port of the lowest-numbered published container port (aima
// publishes exactly one).
func (d *Docker) InspectContainer(ctx context.Context, id string) (runtime.ContainerState, error) {
	release, err := d.slot(ctx, "inspect container "+id)
	if err != nil {
		return runtime.ContainerState{}, err
	}
	defer release()
	res, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return runtime.ContainerState{}, classify(err, "inspect container "+id)
	}
	c := res.Container
	st := runtime.ContainerState{
		ID:        c.ID,
		Name:      strings.TrimPrefix(c.Name, "/"),
		Image:     c.Image,
		CreatedAt: parseTime(c.Created),
	}
	if c.Config != nil {
		st.Image = c.Config.Image
		st.Labels = c.Config.Labels
	}
	if s := c.State; s != nil {
		st.Status = string(s.Status)
		st.Running = s.Running
		st.ExitCode = s.ExitCode
		st.OOMKilled = s.OOMKilled
		st.Error = s.Error
		st.StartedAt = parseTime(s.StartedAt)
		st.FinishedAt = parseTime(s.FinishedAt)
	}
	if c.NetworkSettings != nil {
		st.HostPort = publishedPort(c.NetworkSettings.Ports)
	}
	return st, nil
}

// publishedPort picks the first published host port, ordered by container
// port so the answer does not depend on map order.
func publishedPort(pm network.PortMap) int {
	ports := make([]network.Port, 0, len(pm))
	for p := range pm {
		ports = append(ports, p)
	}
	slices.SortFunc(ports, func(a, b network.Port) int { return int(a.Num()) - int(b.Num()) })
	for _, p := range ports {
		for _, b := range pm[p] {
			if n, err := strconv.Atoi(b.HostPort); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// parseTime reads the engine's RFC 3339 timestamps; Docker's "never"
// (0001-01-01T00:00:00Z) and unparsable values become the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.IsZero() || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// exitedRE reads the exit code out of the list API's human status text
// ("Exited (137) 5 seconds ago"), the only place the list API gives it.
var exitedRE = regexp.MustCompile(`^Exited \((-?\d+)\)`)

// ListContainers returns containers in every state carrying all of
// opts.Labels. The list API has no StartedAt/FinishedAt/OOMKilled; ExitCode is
// read from the status text for exited containers.
func (d *Docker) ListContainers(ctx context.Context, opts runtime.ListOptions) ([]runtime.ContainerState, error) {
	f := make(client.Filters)
	for k, v := range opts.Labels {
		f.Add("label", k+"="+v)
	}
	release, err := d.slot(ctx, "list containers")
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := d.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, classify(err, "list containers")
	}
	out := make([]runtime.ContainerState, 0, len(res.Items))
	for _, s := range res.Items {
		st := runtime.ContainerState{
			ID:        s.ID,
			Image:     s.Image,
			Labels:    s.Labels,
			Status:    string(s.State),
			Running:   s.State == container.StateRunning,
			CreatedAt: time.Unix(s.Created, 0),
		}
		if len(s.Names) > 0 {
			st.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		if m := exitedRE.FindStringSubmatch(s.Status); m != nil {
			st.ExitCode, _ = strconv.Atoi(m[1])
		}
		for _, p := range s.Ports {
			if p.PublicPort > 0 {
				st.HostPort = int(p.PublicPort)
				break
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// StopContainer sends SIGTERM (or the image's STOPSIGNAL) and SIGKILL after
// opts.Timeout, rounded up to whole seconds with a minimum of one, as the API
// counts in seconds. Stopping a stopped container is not an error.
func (d *Docker) StopContainer(ctx context.Context, id string, opts runtime.StopOptions) error {
	secs := max(int((opts.Timeout+time.Second-1)/time.Second), 1)
	// Not counted against the call slots: a stop waits out the container's
	// grace period, and the manager runs at most one per service.
	_, err := d.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	return classify(err, "stop container "+id)
}

// RemoveContainer deletes the container and its anonymous volumes;
// opts.Force kills it first if it runs. Docker refuses a removal while
// another one of the same container is in progress (409 "removal of
// container … is already in progress"): that one is waited for by asking
// again until the container is gone. Asking again also retries a removal
// that failed and left the container dead.
func (d *Docker) RemoveContainer(ctx context.Context, id string, opts runtime.RemoveOptions) error {
	waited := false
	for {
		release, err := d.slot(ctx, "remove container "+id)
		if err != nil {
			return err
		}
		_, err = d.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: opts.Force, RemoveVolumes: true})
		release() // not held while waiting for a removal in progress
		switch {
		case err == nil:
			return nil
		case waited && cerrdefs.IsNotFound(err):
			return nil // the removal that was in progress finished
		case !removalInProgress(err):
			return classify(err, "remove container "+id)
		}
		waited = true
		t := time.NewTimer(removalPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("remove container %s: waiting for the removal in progress: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

// removalPoll is how often RemoveContainer asks again while another removal
// of the container is in progress.
const removalPoll = 50 * time.Millisecond

// WaitExit delivers exactly one ExitStatus once the container is not running,
// then closes the channel. It is push-based (the engine answers the wait
// request when the container stops), so there is no polling delay. Call it
// after StartContainer: a created-but-never-started container counts as not
// running and is reported at once with exit code 0.
func (d *Docker) WaitExit(ctx context.Context, id string) <-chan runtime.ExitStatus {
	out := make(chan runtime.ExitStatus, 1)
	go func() {
		defer close(out)
		w := d.c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case r := <-w.Result:
			st := runtime.ExitStatus{ExitCode: int(r.StatusCode)}
			if r.Error != nil && r.Error.Message != "" {
				st.Err = errs.New(errs.Internal, "wait container %s: %s", id, r.Error.Message)
			}
			out <- st
		case err := <-w.Error:
			if isDaemonAnswer(err) {
				out <- runtime.ExitStatus{Err: classify(err, "wait container "+id)}
			} else {
				out <- runtime.ExitStatus{Err: streamEnd(ctx, err, "wait container "+id)}
			}
		}
	}()
	return out
}
