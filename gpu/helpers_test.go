package gpu

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type countingSource struct{ n atomic.Int64 }

func (c *countingSource) Read(context.Context) (Snapshot, error) {
	c.n.Add(1)
	time.Sleep(5 * time.Millisecond)
	return Snapshot{Devices: []Device{gpu80(0, 0)}}, nil
}

// gpu80 is an 80 GiB GPU with usedGiB in use.
func gpu80(i int, usedGiB int64) Device {
	total := 80 * gib
	return Device{Index: i, UUID: uuidOf(i), Name: "NVIDIA H100 80GB HBM3",
		MemoryTotalBytes: ptr(total), MemoryUsedBytes: ptr(usedGiB * gib), MemoryFreeBytes: ptr(total - usedGiB*gib)}
}

func uuidOf(i int) string {
	return "GPU-0000000" + string(rune('0'+i)) + "-aaaa-bbbb-cccc-dddddddddddd"
}

func snapOf(devs ...Device) Snapshot { return Snapshot{Devices: devs, ReadAt: time.Now()} }

// fmtSscan reads the number after "=" in "--flag=N".
func fmtSscan(arg string, n *int) (int, error) {
	_, v, _ := strings.Cut(arg, "=")
	return fmt.Sscan(v, n)
}

// mustEstimate is EstimateModel for files that are a model's.
func mustEstimate(t *testing.T, path, format string, p Profile, ea EngineArgs) Estimate {
	t.Helper()
	e, err := EstimateModel(path, format, p, ea)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
