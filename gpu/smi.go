package gpu

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"aima/errs"
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

// run executes nvidia-smi with a bounded time; the process is killed (and
// its pipes abandoned) when the timeout passes.
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
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 500 * time.Millisecond
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return nil, noGPUs{note: fmt.Sprintf("no NVIDIA driver on this host (%s not found); no GPUs to manage", bin)}
	}
	if ctx.Err() != nil {
		return nil, errs.New(errs.Unavailable, "nvidia-smi did not answer within %s (a hung GPU driver?)", timeout)
	}
	text := strings.TrimSpace(stdout.String() + "\n" + stderr.String())
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

// ParseQueryGPU parses `nvidia-smi --query-gpu=<QueryFields>
// --format=csv,noheader,nounits`.
func ParseQueryGPU(out []byte) ([]Device, error) {
	rows, err := readCSV(out, len(QueryFields))
	if err != nil {
		return nil, err
	}
	devs := make([]Device, 0, len(rows))
	for _, r := range rows {
		idx, err := strconv.Atoi(r[0])
		if err != nil {
			return nil, fmt.Errorf("index %q: not a number", r[0])
		}
		d := Device{
			Index: idx, UUID: r[1], Name: r[2],
			MemoryTotalBytes: mib(r[3]), MemoryUsedBytes: mib(r[4]), MemoryFreeBytes: mib(r[5]),
			UtilizationPct: integer(r[6]), TemperatureC: integer(r[7]), PowerW: float(r[8]),
			DriverVersion: text(r[9]), ComputeCapability: text(r[10]),
		}
		switch strings.ToLower(text(r[11])) {
		case "enabled":
			d.MIGMode = "enabled"
		case "disabled":
			d.MIGMode = "disabled"
		}
		if d.UUID == "" {
			return nil, fmt.Errorf("GPU %d has no UUID", idx)
		}
		devs = append(devs, d)
	}
	return devs, nil
}

// ParseComputeApps parses `nvidia-smi --query-compute-apps=<AppFields>
// --format=csv,noheader,nounits`, keyed by GPU UUID.
func ParseComputeApps(out []byte) (map[string][]Process, error) {
	procs := map[string][]Process{}
	if strings.Contains(string(out), "No running processes found") {
		return procs, nil
	}
	rows, err := readCSV(out, len(AppFields))
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		pid, err := strconv.Atoi(r[1])
		if err != nil {
			return nil, fmt.Errorf("pid %q: not a number", r[1])
		}
		procs[r[0]] = append(procs[r[0]], Process{PID: pid, Name: text(r[2]), UsedMemoryBytes: mib(r[3])})
	}
	return procs, nil
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

func readCSV(out []byte, fields int) ([][]string, error) {
	r := csv.NewReader(bytes.NewReader(out))
	r.TrimLeadingSpace = true
	r.FieldsPerRecord = -1
	var rows [][]string
	for {
		rec, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != fields {
			return nil, fmt.Errorf("want %d fields per line, got %d: %q", fields, len(rec), strings.Join(rec, ","))
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		rows = append(rows, rec)
	}
	return rows, nil
}

// text is a field's value, empty when nvidia-smi says it has none
// ("[N/A]", "[Not Supported]", "N/A", "[Unknown Error]", ...).
func text(v string) string {
	v = strings.TrimSpace(v)
	if v == "N/A" || (strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]")) {
		return ""
	}
	return v
}

func mib(v string) *int64 {
	f := float(v)
	if f == nil || *f < 0 {
		return nil
	}
	return ptr(int64(*f * (1 << 20)))
}

func integer(v string) *int {
	f := float(v)
	if f == nil {
		return nil
	}
	return ptr(int(*f))
}

func float(v string) *float64 {
	v = text(v)
	if v == "" {
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return nil
	}
	return &f
}
