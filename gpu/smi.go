package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"aima/errs"
	"aima/internal/units"
)

// Source reads the GPU inventory.
type Source interface {
	Read(ctx context.Context) (Snapshot, error)
}

// QueryFields are the --query-gpu fields aima asks nvidia-smi for, in
// the order the parser expects them.
var QueryFields = []string{
	"index", "uuid", "name", "memory.total", "memory.used", "memory.free",
	"utilization.gpu", "temperature.gpu", "power.draw", "driver_version", "compute_cap", "mig.mode.current",
}

// AppFields are the --query-compute-apps fields.
var AppFields = []string{"gpu_uuid", "pid", "process_name", "used_memory"}

// DefaultSMITimeout bounds one nvidia-smi call: a hung driver makes
// nvidia-smi hang, and the daemon must not.
const DefaultSMITimeout = 5 * time.Second

// NvidiaSMI reads the inventory by running nvidia-smi, so the static
// CGO_ENABLED=0 binary works on any host with the NVIDIA driver.
type NvidiaSMI struct {
	// Path is the binary; empty means "nvidia-smi" on PATH.
	Path string
	// Timeout bounds each call (default DefaultSMITimeout).
	Timeout time.Duration

	mu   sync.Mutex
	cuda string // read once from the banner
}

// Read runs the GPU and process queries. A host without the NVIDIA driver
// (no nvidia-smi) or without devices gets an empty snapshot with a note; a
// broken or hanging driver is an Unavailable error within the timeout.
func (n *NvidiaSMI) Read(ctx context.Context) (Snapshot, error) {
	now := time.Now().UTC()
	// The process query runs beside the GPU query: each is a whole
	// nvidia-smi start.
	appsDone := make(chan struct{})
	var apps struct {
		out []byte
		err error
	}
	go func() {
		defer close(appsDone)
		defer func() {
			if v := recover(); v != nil { // a bug here must not end the daemon
				apps.err = errs.New(errs.Internal, "reading nvidia-smi's process list: %v", v)
			}
		}()
		apps.out, apps.err = n.run(ctx, "--query-compute-apps="+strings.Join(AppFields, ","), "--format=csv,noheader,nounits")
	}()
	out, err := n.run(ctx, "--query-gpu="+strings.Join(QueryFields, ","), "--format=csv,noheader,nounits")
	<-appsDone
	if err != nil {
		var none noGPUs
		if errors.As(err, &none) {
			return Snapshot{Devices: []Device{}, ReadAt: now, Note: none.note}, nil
		}
		return Snapshot{}, err
	}
	devs, err := ParseQueryGPU(out)
	if err != nil {
		return Snapshot{}, errs.Wrap(errs.Unavailable, err, "nvidia-smi output")
	}
	if len(devs) > 0 {
		procs, err := ParseComputeApps(apps.out)
		if apps.err != nil {
			return Snapshot{}, apps.err
		}
		if err != nil {
			return Snapshot{}, errs.Wrap(errs.Unavailable, err, "nvidia-smi output")
		}
		attachProcesses(devs, procs)
		cuda := n.cudaVersion(ctx)
		for i := range devs {
			devs[i].CUDAVersion = cuda
		}
	}
	return Snapshot{Devices: devs, ReadAt: now}, nil
}

// cudaVersion reads the driver's CUDA version from nvidia-smi's banner once.
func (n *NvidiaSMI) cudaVersion(ctx context.Context) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cuda == "" {
		if banner, err := n.run(ctx); err == nil {
			n.cuda = ParseCUDAVersion(banner)
		}
	}
	return n.cuda
}

// noGPUs is the "host has no NVIDIA GPU" outcome: not an error.
type noGPUs struct{ note string }

func (e noGPUs) Error() string { return e.note }

// MaxSMIOutput bounds what one nvidia-smi call may print on stdout (its
// stderr gets a sixteenth of it): 1,024 GPUs or 65,536 processes fit in
// it many times over, and a driver or a stand-in that prints more is cut
// off and killed rather than read into the daemon's memory.
const MaxSMIOutput = 4 << 20

// errTooMuchOutput ends a call whose output passed its bound.
var errTooMuchOutput = errors.New("nvidia-smi output over its bound")

// boundedBuffer keeps what a process prints up to limit bytes; the write
// that would pass it fails and kills the process (through stop).
type boundedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
	stop  func()
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.over {
		return 0, errTooMuchOutput
	}
	if room := b.limit - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:room])
		b.over = true
		b.stop()
		return room, errTooMuchOutput
	}
	return b.buf.Write(p)
}

// run executes nvidia-smi with a bounded time and bounded output; the
// process is killed (and its pipes abandoned) when the timeout passes or
// it prints more than MaxSMIOutput.
func (n *NvidiaSMI) run(ctx context.Context, args ...string) ([]byte, error) {
	bin := n.Path
	if bin == "" {
		bin = "nvidia-smi"
	}
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = DefaultSMITimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	killed, kill := context.WithCancel(ctx)
	defer kill()
	cmd := exec.CommandContext(killed, bin, args...)
	cmd.WaitDelay = 500 * time.Millisecond
	stdout := &boundedBuffer{limit: MaxSMIOutput, stop: kill}
	stderr := &boundedBuffer{limit: MaxSMIOutput / 16, stop: kill}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if stdout.over || stderr.over {
		return nil, errs.New(errs.Unavailable, "nvidia-smi printed more than %s: output refused and the process killed (a broken driver, or not nvidia-smi?)", units.Bytes(MaxSMIOutput))
	}
	if err == nil {
		return stdout.buf.Bytes(), nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return nil, noGPUs{note: fmt.Sprintf("no NVIDIA driver on this host (%s not found); no GPUs to manage", bin)}
	}
	if ctx.Err() != nil {
		return nil, errs.New(errs.Unavailable, "nvidia-smi did not answer within %s (a hung GPU driver?)", timeout)
	}
	text := strings.TrimSpace(stdout.buf.String() + "\n" + stderr.buf.String())
	if strings.Contains(text, "No devices were found") {
		return nil, noGPUs{note: "the NVIDIA driver reports no GPU devices"}
	}
	var ee *exec.ExitError
	code := -1
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	if text == "" {
		text = err.Error()
	}
	return nil, errs.New(errs.Unavailable, "nvidia-smi failed (exit %d): %s", code, firstLines(text, 2))
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "; ")
}

func attachProcesses(devs []Device, procs map[string][]Process) {
	for i := range devs {
		devs[i].Processes = procs[devs[i].UUID]
	}
}

var cudaRE = regexp.MustCompile(`CUDA Version:\s*([0-9][0-9.]*)`)

// ParseCUDAVersion finds "CUDA Version: 13.0" in nvidia-smi's banner.
func ParseCUDAVersion(banner []byte) string {
	if m := cudaRE.FindSubmatch(banner); m != nil {
		return string(m[1])
	}
	return ""
}
