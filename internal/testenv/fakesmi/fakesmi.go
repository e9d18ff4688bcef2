// Package fakesmi is a stand-in for nvidia-smi that gives a GPU-less test
// machine a GPU inventory. The program in internal/testenv/nvidia-smi runs
// it; tests configure it with a Spec file (testenv.FakeNvidiaSMI writes one
// and a wrapper script named nvidia-smi that points the program at it), and
// may rewrite the file mid-test to make the "driver" hang or fail.
package fakesmi

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// EnvSpec names the Spec file the program reads.
const EnvSpec = "AIMA_FAKE_NVIDIA_SMI"

// Modes of the fake driver.
const (
	ModeOK        = ""           // answer the queries
	ModeHang      = "hang"       // never answer (a hung driver)
	ModeMismatch  = "mismatch"   // "Failed to initialize NVML: Driver/library version mismatch", exit 18
	ModeNoDevices = "no-devices" // "No devices were found", exit 6
	ModeNoDriver  = "no-driver"  // "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver", exit 9
	ModeFlood     = "flood"      // print rows of the GPU query without end (until killed or the pipe closes)
)

// GPU is one simulated device.
type GPU struct {
	Name      string `json:"name,omitempty"` // default NVIDIA H100 80GB HBM3
	UUID      string `json:"uuid,omitempty"` // default GPU-00000000-0000-4000-8000-00000000000<index>
	MemoryMiB int64  `json:"memory_mib"`
	UsedMiB   int64  `json:"used_mib,omitempty"`
}

// Spec is what the fake answers.
type Spec struct {
	Mode   string `json:"mode,omitempty"`
	GPUs   []GPU  `json:"gpus,omitempty"`
	Driver string `json:"driver,omitempty"` // default 580.95.05
	CUDA   string `json:"cuda,omitempty"`   // default 13.0
	// Recorded outputs to replay instead of GPUs (files written in exactly
	// the format nvidia-smi prints).
	QueryGPUFile    string `json:"query_gpu_file,omitempty"`
	ComputeAppsFile string `json:"compute_apps_file,omitempty"`
}

// UUIDOf is the default UUID of the simulated GPU at index i.
func UUIDOf(i int) string { return fmt.Sprintf("GPU-00000000-0000-4000-8000-%012d", i) }

// Load reads the Spec named by $AIMA_FAKE_NVIDIA_SMI.
func Load() (Spec, error) {
	var s Spec
	path := os.Getenv(EnvSpec)
	if path == "" {
		return s, fmt.Errorf("%s is not set", EnvSpec)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(raw, &s)
}

// Run answers one nvidia-smi invocation and returns its exit code.
func Run(s Spec, args []string, stdout io.Writer) int {
	switch s.Mode {
	case ModeHang:
		for {
			time.Sleep(time.Hour)
		}
	case ModeMismatch:
		fmt.Fprint(stdout, "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95\n")
		return 18
	case ModeNoDevices:
		fmt.Fprintln(stdout, "No devices were found")
		return 6
	case ModeNoDriver:
		fmt.Fprint(stdout, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n")
		return 9
	case ModeFlood:
		row := strings.Repeat("0, "+UUIDOf(0)+", NVIDIA H100 80GB HBM3, 81559, 0, 81559, 0, 30, 69.50, 580.95.05, 9.0, Disabled\n", 512)
		for {
			if _, err := io.WriteString(stdout, row); err != nil {
				return 1
			}
		}
	}
	if s.Driver == "" {
		s.Driver = "580.95.05"
	}
	if s.CUDA == "" {
		s.CUDA = "13.0"
	}
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--query-gpu="):
			if s.QueryGPUFile != "" {
				return replay(s.QueryGPUFile, stdout)
			}
			for i, g := range s.GPUs {
				var row []string
				for _, f := range strings.Split(strings.TrimPrefix(a, "--query-gpu="), ",") {
					row = append(row, field(s, i, g, f))
				}
				fmt.Fprintln(stdout, strings.Join(row, ", "))
			}
			return 0
		case strings.HasPrefix(a, "--query-compute-apps="):
			if s.ComputeAppsFile != "" {
				return replay(s.ComputeAppsFile, stdout)
			}
			return 0
		case a == "-L":
			for i, g := range s.GPUs {
				fmt.Fprintf(stdout, "GPU %d: %s (UUID: %s)\n", i, name(g), uuid(i, g))
			}
			return 0
		}
	}
	fmt.Fprintf(stdout, "| NVIDIA-SMI %s             Driver Version: %s     CUDA Version: %s     |\n", s.Driver, s.Driver, s.CUDA)
	return 0
}

func replay(path string, w io.Writer) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(w, err)
		return 2
	}
	_, _ = w.Write(raw)
	return 0
}

func name(g GPU) string {
	if g.Name == "" {
		return "NVIDIA H100 80GB HBM3"
	}
	return g.Name
}

func uuid(i int, g GPU) string {
	if g.UUID == "" {
		return UUIDOf(i)
	}
	return g.UUID
}

func field(s Spec, i int, g GPU, f string) string {
	switch f {
	case "index":
		return fmt.Sprint(i)
	case "uuid":
		return uuid(i, g)
	case "name":
		return name(g)
	case "memory.total":
		return fmt.Sprint(g.MemoryMiB)
	case "memory.used":
		return fmt.Sprint(g.UsedMiB)
	case "memory.free":
		return fmt.Sprint(max(0, g.MemoryMiB-g.UsedMiB))
	case "utilization.gpu":
		return "0"
	case "temperature.gpu":
		return "30"
	case "power.draw":
		return "69.50"
	case "driver_version":
		return s.Driver
	case "compute_cap":
		return "9.0"
	case "mig.mode.current":
		return "Disabled"
	}
	return "[N/A]"
}
