package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ProcMemory is a process's memory as /proc/PID/status reports it, in KiB.
type ProcMemory struct {
	RSS  int // VmRSS: resident now
	Peak int // VmHWM: the most ever resident
	File int // RssFile: file-backed pages (the executable, the store's memory map)
	Anon int // RssAnon: the heap, stacks and the Go runtime's own memory
}

// ReadProcMemory reads pid's ProcMemory (benchmarks report a daemon
// subprocess's memory with it).
func ReadProcMemory(t testing.TB, pid int) ProcMemory {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	var m ProcMemory
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			m.RSS = v
		case "VmHWM:":
			m.Peak = v
		case "RssFile:":
			m.File = v
		case "RssAnon:":
			m.Anon = v
		}
	}
	return m
}

// MiB is KiB in MiB.
func MiB(kib int) float64 { return float64(kib) / 1024 }

// ReadProcCPU is the CPU time pid has used so far (user and system, from
// /proc/PID/stat, in clock ticks of 10 ms).
func ReadProcCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := strings.LastIndexByte(string(raw), ')')
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
