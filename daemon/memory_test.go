package daemon

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"testing"
	"time"
)

// unsetenv removes key for the test and puts it back after.
func unsetenv(t *testing.T, key string) {
	if v, ok := os.LookupEnv(key); ok {
		t.Cleanup(func() { os.Setenv(key, v) })
	}
	os.Unsetenv(key)
}

func TestMemoryPolicySetsTheGoalAndALimitThatFollowsTheHeap(t *testing.T) {
	unsetenv(t, "GOGC")
	unsetenv(t, "GOMEMLIMIT")
	prevPercent := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prevPercent) })
	defer func(d time.Duration) { governEvery = d }(governEvery)
	governEvery = 20 * time.Millisecond

	stop := memoryPolicy(context.Background(), nil)
	if p := debug.SetGCPercent(gcPercent); p != gcPercent {
		t.Errorf("GC percent %d; want %d", p, gcPercent)
	}
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) == math.MaxInt64 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 || limit < limitMinimum {
		t.Fatalf("memory limit %d; want one set, at least %d", limit, limitMinimum)
	}
	stop()
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit %d after stop; want none", l)
	}
}

func TestMemoryPolicyLeavesTheOperatorsSettings(t *testing.T) {
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "1GiB")
	prevPercent := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prevPercent) })
	defer func(d time.Duration) { governEvery = d }(governEvery)
	governEvery = 10 * time.Millisecond

	stop := memoryPolicy(context.Background(), nil)
	time.Sleep(100 * time.Millisecond)
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GC percent %d; want the operator's 100", p)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit %d; want none set by the daemon (GOMEMLIMIT is read at start-up only)", l)
	}
	stop()
}
