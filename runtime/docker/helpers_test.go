package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"aima/errs"
	"aima/internal/testenv"
	"aima/runtime"
)

// testLabel marks every container a test creates; its value is unique per
// test so that cleanup and list filters see only that test's containers.
const testLabel = "aima.test"

// fixture is one integration test's view of the engine.
type fixture struct {
	d      *Docker
	raw    *client.Client // for checks the runtime interface does not expose
	name   string         // unique per test; also the label value
	labels map[string]string
	n      atomic.Int32 // container name counter
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.RequireDocker(t)
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	name := testenv.UniqueName(t)
	testenv.RemoveContainersWithLabel(t, testLabel, name)
	return &fixture{d: d, raw: testenv.DockerClient(t), name: name, labels: map[string]string{testLabel: name}}
}

// spec returns a container spec with the fixture's label and a unique name.
func (f *fixture) spec(image string, args ...string) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:   fmt.Sprintf("%s-%d", f.name, f.n.Add(1)),
		Image:  image,
		Args:   args,
		Labels: map[string]string{testLabel: f.name, runtime.LabelManaged: "true"},
	}
}

// run creates and starts a container from spec.
func (f *fixture) run(t *testing.T, spec runtime.ContainerSpec) string {
	t.Helper()
	id, err := f.d.CreateContainer(t.Context(), spec)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := f.d.StartContainer(t.Context(), id); err != nil {
		t.Fatalf("start: %v", err)
	}
	return id
}

// runReady runs the test program with steps after it has printed "ready",
// and returns once that line is in the container's log: its SIGTERM
// handler is installed by then. (A SIGTERM that reaches PID 1 before the Go
// runtime hands it to the program is ignored by the kernel, and the Go
// runtime then exits with code 2.)
func (f *fixture) runReady(t *testing.T, steps ...string) string {
	t.Helper()
	id := f.run(t, f.spec(testenv.TestProgImage(t), append([]string{"out:ready"}, steps...)...))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	errReady := errors.New("ready")
	err := f.d.Logs(ctx, id, runtime.LogOptions{Follow: true, Tail: -1}, func(l runtime.LogLine) error {
		if l.Text == "ready" {
			return errReady
		}
		return nil
	})
	if !errors.Is(err, errReady) {
		t.Fatalf("container %s never printed ready: %v", id, err)
	}
	return id
}

// waitExit waits (bounded) for the container to stop and returns its code.
func (f *fixture) waitExit(t *testing.T, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, ok := <-f.d.WaitExit(ctx, id)
	if !ok || st.Err != nil {
		t.Fatalf("wait %s: %v (delivered=%v)", id, st.Err, ok)
	}
	return st.ExitCode
}

func wantKind(t *testing.T, err error, kind errs.Kind, contains ...string) {
	t.Helper()
	if !errs.Is(err, kind) {
		t.Fatalf("error %v: kind %q, want %q", err, errs.KindOf(err), kind)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// dockerSocket is the engine's unix socket path, for the proxy below.
func dockerSocket(t *testing.T) string {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		return "/var/run/docker.sock"
	}
	if p, ok := strings.CutPrefix(host, "unix://"); ok {
		return p
	}
	t.Skipf("engine proxy needs a unix socket; DOCKER_HOST=%s", host)
	return ""
}

// proxy forwards a unix socket to the engine's socket and can cut every
// connection at once, to simulate the engine going away mid-stream.
type proxy struct {
	host  string // "unix://..." for WithHost
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	watch string        // request text to look for
	saw   chan struct{} // closed once a request contained watch
	once  sync.Once
}

// watcher forwards client bytes upstream and reports when they contain
// p.watch (requests are small, so one Write holds the request line).
type watcher struct {
	p  *proxy
	up net.Conn
}

func (w watcher) Write(b []byte) (int, error) {
	if w.p.watch != "" && strings.Contains(string(b), w.p.watch) {
		w.p.once.Do(func() { close(w.p.saw) })
	}
	return w.up.Write(b)
}

// startProxy starts the proxy; saw closes once a request containing watch
// (e.g. "/wait") went through.
func startProxy(t *testing.T, watch string) *proxy {
	t.Helper()
	target := dockerSocket(t)
	path := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{host: "unix://" + path, l: l, watch: watch, saw: make(chan struct{})}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(watcher{p, up}, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return p
}

// cut stops accepting and closes every proxied connection.
func (p *proxy) cut() {
	_ = p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
