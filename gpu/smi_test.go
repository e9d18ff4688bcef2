package gpu

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aima/errs"
	"aima/internal/testenv"
	"aima/internal/testenv/fakesmi"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const gib = int64(1) << 30
const mibB = int64(1) << 20

func TestParseH200(t *testing.T) {
	devs, err := ParseQueryGPU(fixture(t, "h200-query-gpu.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 {
		t.Fatalf("%d devices, want 1", len(devs))
	}
	d := devs[0]
	if d.Name != "NVIDIA H200" || d.Total() != 143771*mibB || d.DriverVersion != "580.159.04" || d.ComputeCapability != "9.0" || d.MIGMode != "disabled" {
		t.Errorf("H200 parsed as %+v", d)
	}
	if *d.PowerW != 75.43 || *d.TemperatureC != 29 || *d.UtilizationPct != 0 || *d.MemoryFreeBytes != 143181*mibB {
		t.Errorf("H200 figures %v %v %v %v", *d.PowerW, *d.TemperatureC, *d.UtilizationPct, *d.MemoryFreeBytes)
	}
	if got := ParseCUDAVersion(fixture(t, "h200-banner.txt")); got != "13.0" {
		t.Errorf("CUDA version %q, want 13.0", got)
	}
}

func TestParseEightGPUHostWithProcesses(t *testing.T) {
	devs, err := ParseQueryGPU(fixture(t, "h100x8-query-gpu.csv"))
	if err != nil {
		t.Fatal(err)
	}
	procs, err := ParseComputeApps(fixture(t, "h100x8-compute-apps.csv"))
	if err != nil {
		t.Fatal(err)
	}
	attachProcesses(devs, procs)
	if len(devs) != 8 {
		t.Fatalf("%d devices, want 8", len(devs))
	}
	for i, d := range devs {
		if d.Index != i || !strings.HasPrefix(d.UUID, "GPU-") || d.Total() != 81559*mibB {
			t.Errorf("device %d: %+v", i, d)
		}
	}
	if len(devs[0].Processes) != 1 || devs[0].Processes[0].PID != 411872 || *devs[0].Processes[0].UsedMemoryBytes != 72444*mibB {
		t.Errorf("GPU 0 processes %+v", devs[0].Processes)
	}
	if len(devs[2].Processes) != 0 || len(devs[6].Processes) != 1 {
		t.Errorf("processes attached to the wrong GPUs: %+v / %+v", devs[2].Processes, devs[6].Processes)
	}
}

func TestParseConsumerMIGAndNotAvailable(t *testing.T) {
	rtx, err := ParseQueryGPU(fixture(t, "rtx4090-query-gpu.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if rtx[0].Name != "NVIDIA GeForce RTX 4090" || rtx[0].MIGMode != "" || rtx[0].Total() != 24564*mibB {
		t.Errorf("RTX 4090: %+v", rtx[0])
	}
	procs, err := ParseComputeApps(fixture(t, "rtx4090-compute-apps.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if p := procs[rtx[0].UUID]; len(p) != 1 || p[0].UsedMemoryBytes != nil || p[0].Name != "/usr/lib/xorg/Xorg" {
		t.Errorf("Xorg with [N/A] memory: %+v", p)
	}
	mig, err := ParseQueryGPU(fixture(t, "a100-mig-query-gpu.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !mig[0].MIG() || mig[1].MIG() || mig[0].UtilizationPct != nil {
		t.Errorf("MIG: %+v / %+v", mig[0], mig[1])
	}
	gb10, err := ParseQueryGPU(fixture(t, "gb10-query-gpu.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if d := gb10[0]; d.MemoryKnown() || d.MemoryTotalBytes != nil || d.ComputeCapability != "12.1" || d.MemoryText() != "memory not reported" {
		t.Errorf("GB10 with [N/A] memory: %+v", d)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, in := range []string{"0, GPU-x, name\n", "x, GPU-1, a, 1, 1, 1, 1, 1, 1, d, 9.0, Disabled\n", `0, "unterminated` + "\n"} {
		if _, err := ParseQueryGPU([]byte(in)); err == nil {
			t.Errorf("ParseQueryGPU(%q) accepted", in)
		}
	}
}

// The fake nvidia-smi (internal/testenv/nvidia-smi) replays the recorded
// outputs and the broken-driver behaviours through a real exec.
func TestNvidiaSMIExec(t *testing.T) {
	abs := func(n string) string { p, _ := filepath.Abs(filepath.Join("testdata", n)); return p }
	fake := testenv.FakeNvidiaSMI(t, fakesmi.Spec{QueryGPUFile: abs("h100x8-query-gpu.csv"), ComputeAppsFile: abs("h100x8-compute-apps.csv")})
	ctx := context.Background()
	smi := &NvidiaSMI{Path: fake.Path, Timeout: 2 * time.Second}

	snap, err := smi.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Devices) != 8 || snap.Devices[0].CUDAVersion != "13.0" || len(snap.Devices[1].Processes) != 1 {
		t.Fatalf("snapshot %+v", snap)
	}

	for _, tc := range []struct {
		mode, want string
		empty      bool
	}{
		{fakesmi.ModeMismatch, "Driver/library version mismatch", false},
		{fakesmi.ModeNoDriver, "couldn't communicate with the NVIDIA driver", false},
		{fakesmi.ModeNoDevices, "reports no GPU devices", true},
	} {
		fake.Set(t, fakesmi.Spec{Mode: tc.mode})
		snap, err := smi.Read(ctx)
		if tc.empty {
			if err != nil || len(snap.Devices) != 0 || !strings.Contains(snap.Note, tc.want) {
				t.Errorf("%s: %+v, %v", tc.mode, snap, err)
			}
			continue
		}
		if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want unavailable with %q", tc.mode, err, tc.want)
		}
	}

	t.Run("hang is unavailable within the timeout", func(t *testing.T) {
		fake.Set(t, fakesmi.Spec{Mode: fakesmi.ModeHang})
		hung := &NvidiaSMI{Path: fake.Path, Timeout: 300 * time.Millisecond}
		t0 := time.Now()
		_, err := hung.Read(ctx)
		if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "did not answer within") {
			t.Errorf("error %v", err)
		}
		if took := time.Since(t0); took > 5*time.Second {
			t.Errorf("a hung nvidia-smi took %s to give up", took)
		}
	})

	t.Run("no nvidia-smi is an empty inventory", func(t *testing.T) {
		snap, err := (&NvidiaSMI{Path: filepath.Join(t.TempDir(), "nvidia-smi")}).Read(ctx)
		if err != nil || len(snap.Devices) != 0 || !strings.Contains(snap.Note, "no NVIDIA driver") {
			t.Errorf("%+v, %v", snap, err)
		}
	})
}

func TestInventorySharesConcurrentReads(t *testing.T) {
	src := &countingSource{}
	inv := NewInventory(src)
	done := make(chan struct{})
	for range 5 {
		go func() { _, _ = inv.Refresh(context.Background()); done <- struct{}{} }()
	}
	for range 5 {
		<-done
	}
	if n := src.n.Load(); n < 1 || n > 5 {
		t.Errorf("%d reads", n)
	}
	if _, err := inv.Last(context.Background()); err != nil {
		t.Error(err)
	}
}

// nvidia-smi's output is untrusted: impossible figures become unknown and
// are named, never NaN, infinity or a wrapped integer.
func TestParseImpossibleFigures(t *testing.T) {
	const u0, u1, u2 = "GPU-00000000-0000-4000-8000-000000000000", "GPU-00000000-0000-4000-8000-000000000001", "GPU-00000000-0000-4000-8000-000000000002"
	in := "0, " + u0 + ", NVIDIA H100, 81559, [N/A], 81000, 0, 30, NaN, 580.95.05, 9.0, Disabled\n" +
		"1, " + u1 + ", NVIDIA H100, 9223372036854775807, 1, 2, 1e300, -inf, inf, 580.95.05, 9.0, Disabled\n" +
		"2, " + u2 + ", NVIDIA H100, 80000, 90000, 80001, 101, 30, -5, 5.8.0;rm, 9.0x, Disabled\n"
	devs, err := ParseQueryGPU([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	d0, d1, d2 := devs[0], devs[1], devs[2]
	if d0.PowerW != nil || !d0.MemoryKnown() || d0.MemoryUsedBytes != nil || !slices.Contains(d0.InvalidFields, `power.draw="NaN"`) {
		t.Errorf("GPU 0: power %v, used %v, invalid %v", d0.PowerW, d0.MemoryUsedBytes, d0.InvalidFields)
	}
	if d1.MemoryTotalBytes != nil || d1.UtilizationPct != nil || d1.TemperatureC != nil || d1.PowerW != nil || len(d1.InvalidFields) != 4 {
		t.Errorf("GPU 1: %+v", d1)
	}
	if d2.MemoryUsedBytes != nil || d2.MemoryFreeBytes != nil || d2.UtilizationPct != nil || d2.PowerW != nil ||
		d2.DriverVersion != "" || d2.ComputeCapability != "" || *d2.MemoryTotalBytes != 80000*mibB {
		t.Errorf("GPU 2: %+v (invalid %v)", d2, d2.InvalidFields)
	}
	// Every device encodes: no NaN or infinity is left.
	if _, err := json.Marshal(devs); err != nil {
		t.Error(err)
	}
}

// Two rows naming one GPU (by index or UUID, in any case), or a UUID that
// is not one, make the read an error: a lease must name one physical GPU.
func TestParseRefusesAmbiguousGPUs(t *testing.T) {
	row := func(i int, uuid string) string {
		return fmt.Sprintf("%d, %s, NVIDIA H100, 81559, 0, 81559, 0, 30, 70, 580.95.05, 9.0, Disabled\n", i, uuid)
	}
	for name, in := range map[string]string{
		"same index":      row(0, uuidOf(0)) + row(0, uuidOf(1)),
		"same UUID":       row(0, uuidOf(0)) + row(1, uuidOf(0)),
		"same UUID, case": row(0, "GPU-abc") + row(1, "GPU-ABC"),
		"UUID with comma": row(0, `"GPU-1,GPU-2"`),
		"index too large": row(100000, uuidOf(0)),
		"negative index":  row(-1, uuidOf(0)),
	} {
		if devs, err := ParseQueryGPU([]byte(in)); err == nil {
			t.Errorf("%s: accepted as %+v", name, devs)
		}
	}
}

// An nvidia-smi that prints without end is cut off at MaxSMIOutput and
// killed, with a reason, instead of being read into memory.
func TestNvidiaSMIOutputBounded(t *testing.T) {
	fake := testenv.FakeNvidiaSMI(t, fakesmi.Spec{Mode: fakesmi.ModeFlood})
	_, err := (&NvidiaSMI{Path: fake.Path, Timeout: time.Minute}).Read(context.Background())
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "printed more than 4.0 MiB") {
		t.Fatalf("error %v, want unavailable: printed more than 4.0 MiB", err)
	}
}
