package gpu

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// nvidia-smi's output is read as untrusted input: a broken driver, a
// wrapper script or a hostile binary on PATH can print anything. Every
// figure is checked to be a finite number in the range a real GPU can
// report; a figure outside it is stored as unknown (nil) and named in the
// device's InvalidFields, so no NaN, infinity or overflowed integer reaches
// placement, the JSON answers or the metrics. What identifies a GPU (index
// and UUID) is checked strictly: a row without a valid one, or two rows
// naming the same GPU, make the whole read an error, since a lease on an
// ambiguous device could hand one GPU to two services.

// Limits of what nvidia-smi may report.
const (
	// MaxDevices bounds the rows of one inventory.
	MaxDevices = 1024
	// maxIndex is the largest device index (device IDs have up to 3 digits).
	maxIndex = 999
	// maxMemoryMiB is 16 TiB of device memory, far above any GPU made.
	maxMemoryMiB = 1 << 24
	// maxPowerW bounds a power draw in watts.
	maxPowerW = 100_000
	// maxProcesses bounds the compute-apps rows.
	maxProcesses = 65536
	// maxNameLen bounds a product or process name.
	maxNameLen = 256
)

var (
	uuidRE       = regexp.MustCompile(`^(GPU|MIG)-[0-9a-zA-Z/-]{1,80}$`)
	driverRE     = regexp.MustCompile(`^[0-9][0-9.]{0,31}$`)
	computeCapRE = regexp.MustCompile(`^[0-9]{1,2}\.[0-9]{1,2}$`)
)

// ParseQueryGPU parses `nvidia-smi --query-gpu=<QueryFields>
// --format=csv,noheader,nounits`.
func ParseQueryGPU(out []byte) ([]Device, error) {
	rows, err := readCSV(out, len(QueryFields), MaxDevices)
	if err != nil {
		return nil, err
	}
	devs := make([]Device, 0, len(rows))
	byIndex, byUUID := map[int]int{}, map[string]int{}
	for n, r := range rows {
		idx, err := strconv.Atoi(r[0])
		if err != nil || idx < 0 || idx > maxIndex {
			return nil, fmt.Errorf("row %d: index %q: want a whole number between 0 and %d", n+1, clip(r[0]), maxIndex)
		}
		if !uuidRE.MatchString(r[1]) {
			return nil, fmt.Errorf("GPU %d: UUID %q: want GPU-… or MIG-…", idx, clip(r[1]))
		}
		if prev, dup := byIndex[idx]; dup {
			return nil, fmt.Errorf("GPU index %d appears on rows %d and %d", idx, prev, n+1)
		}
		key := strings.ToLower(r[1])
		if prev, dup := byUUID[key]; dup {
			return nil, fmt.Errorf("GPU UUID %s appears on rows %d and %d", r[1], prev, n+1)
		}
		byIndex[idx], byUUID[key] = n+1, n+1
		v := fieldCheck{}
		d := Device{
			Index: idx, UUID: r[1], Name: clip(text(r[2])),
			MemoryTotalBytes:  v.mib("memory.total", r[3]),
			MemoryUsedBytes:   v.mib("memory.used", r[4]),
			MemoryFreeBytes:   v.mib("memory.free", r[5]),
			UtilizationPct:    v.integer("utilization.gpu", r[6], 0, 100),
			TemperatureC:      v.integer("temperature.gpu", r[7], -100, 200),
			PowerW:            v.number("power.draw", r[8], 0, maxPowerW),
			DriverVersion:     v.match("driver_version", r[9], driverRE),
			ComputeCapability: v.match("compute_cap", r[10], computeCapRE),
		}
		// Used or free above the total cannot be: the pair is not trusted.
		if t := d.MemoryTotalBytes; t != nil {
			if d.MemoryUsedBytes != nil && *d.MemoryUsedBytes > *t {
				d.MemoryUsedBytes = nil
				v.invalid = append(v.invalid, "memory.used (above memory.total)")
			}
			if d.MemoryFreeBytes != nil && *d.MemoryFreeBytes > *t {
				d.MemoryFreeBytes = nil
				v.invalid = append(v.invalid, "memory.free (above memory.total)")
			}
		}
		switch strings.ToLower(text(r[11])) {
		case "enabled":
			d.MIGMode = "enabled"
		case "disabled":
			d.MIGMode = "disabled"
		}
		d.InvalidFields = v.invalid
		devs = append(devs, d)
	}
	return devs, nil
}

// ParseComputeApps parses `nvidia-smi --query-compute-apps=<AppFields>
// --format=csv,noheader,nounits`, keyed by GPU UUID.
func ParseComputeApps(out []byte) (map[string][]Process, error) {
	procs := map[string][]Process{}
	if bytes.Contains(out, []byte("No running processes found")) {
		return procs, nil
	}
	rows, err := readCSV(out, len(AppFields), maxProcesses)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		pid, err := strconv.Atoi(r[1])
		if err != nil || pid < 0 || pid > math.MaxInt32 {
			return nil, fmt.Errorf("pid %q: not a process id", clip(r[1]))
		}
		var v fieldCheck
		procs[r[0]] = append(procs[r[0]], Process{PID: pid, Name: clip(text(r[2])), UsedMemoryBytes: v.mib("used_memory", r[3])})
	}
	return procs, nil
}

func readCSV(out []byte, fields, maxRows int) ([][]string, error) {
	r := csv.NewReader(bytes.NewReader(out))
	r.TrimLeadingSpace = true
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
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
			return nil, fmt.Errorf("want %d fields per line, got %d: %q", fields, len(rec), clip(strings.Join(rec, ",")))
		}
		if len(rows) == maxRows {
			return nil, fmt.Errorf("more than %d rows", maxRows)
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

// clip bounds a string taken from nvidia-smi for names and messages.
func clip(s string) string {
	if len(s) > maxNameLen {
		s = s[:maxNameLen] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// fieldCheck reads one row's figures, collecting the names of those
// reported with a value that cannot be (not a number aima accepts, not
// finite, out of range). A field the driver reports as not available
// ([N/A]) is unknown without being invalid.
type fieldCheck struct{ invalid []string }

func (c *fieldCheck) bad(name, v string) {
	c.invalid = append(c.invalid, fmt.Sprintf("%s=%q", name, clip(v)))
}

// number is a finite value in [lo, hi], nil when unknown or invalid.
func (c *fieldCheck) number(name, v string, lo, hi float64) *float64 {
	t := text(v)
	if t == "" {
		return nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < lo || f > hi {
		c.bad(name, v)
		return nil
	}
	return &f
}

func (c *fieldCheck) integer(name, v string, lo, hi int) *int {
	f := c.number(name, v, float64(lo), float64(hi))
	if f == nil {
		return nil
	}
	return ptr(int(*f))
}

// mib converts a MiB figure to bytes; its range keeps the product far
// below the int64 limit.
func (c *fieldCheck) mib(name, v string) *int64 {
	f := c.number(name, v, 0, maxMemoryMiB)
	if f == nil {
		return nil
	}
	return ptr(int64(math.Round(*f * (1 << 20))))
}

func (c *fieldCheck) match(name, v string, re *regexp.Regexp) string {
	t := text(v)
	if t != "" && !re.MatchString(t) {
		c.bad(name, v)
		return ""
	}
	return t
}
