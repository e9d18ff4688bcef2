// Package testports hands out host ports to tests: single ports and port
// ranges below the kernel's ephemeral ports, each block held by a lock file
// so concurrent test processes never share one. It imports nothing of
// aima's, so any package's tests can use it (testenv wraps it).
package testports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"aima/internal/filelock"
	"aima/internal/kernelports"
)

// Port ranges for the daemons of tests come in blocks of portBlock ports
// between portBase and the kernel's first ephemeral port. A range inside
// the ephemeral range loses its ports to the source ports of the tests' own
// loopback connections: a service's kept port is then "in use by another
// process" at its next start. Each block is held by a lock file, so the
// concurrent test processes of one `go test ./...` never share one either.
const (
	portBase  = 10000
	portBlock = 100
)

// EphemeralLow is the first port the kernel hands out as a source port
// (32768 where it does not say).
func EphemeralLow() int {
	if lo, _, ok := kernelports.Ephemeral(kernelports.File); ok && lo > portBase {
		return lo
	}
	return 32768
}

// PortRange reserves span consecutive host ports below the ephemeral range
// for the test and returns the first; the reservation ends with the test.
func PortRange(t testing.TB, span int) int {
	t.Helper()
	first, unlock := takeBlocks(t, (span+portBlock)/portBlock) // span+1 ports: LOW-HIGH includes both
	t.Cleanup(unlock)
	return first
}

// takeBlocks takes n consecutive free blocks, starting the search at a
// random block, and returns their first port and their release.
func takeBlocks(t testing.TB, n int) (int, func()) {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "aima-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("test ports: %v", err)
	}
	starts := (EphemeralLow()-portBase)/portBlock - n + 1 // where a run of n blocks can start
	if starts < 1 {
		t.Fatalf("test ports: %d ports do not fit below the ephemeral ports", n*portBlock)
	}
	first := rand.IntN(starts)
	for i := range starts {
		b := (first + i) % starts
		if unlock, ok := lockBlocks(t, dir, b, n); ok {
			return portBase + b*portBlock, unlock
		}
	}
	t.Fatalf("test ports: every run of %d blocks of %d ports below %d is held by another test", n, portBlock, EphemeralLow())
	return 0, nil
}

// lockBlocks takes blocks b..b+n-1, or none of them.
func lockBlocks(t testing.TB, dir string, b, n int) (func(), bool) {
	var held []func()
	release := func() {
		for _, u := range held {
			u()
		}
	}
	for k := b; k < b+n; k++ {
		unlock, ok, err := filelock.TryLock(filepath.Join(dir, fmt.Sprintf("block-%d", k)))
		if err != nil {
			release()
			t.Fatalf("port range: %v", err)
		}
		if !ok {
			release()
			return nil, false
		}
		held = append(held, unlock)
	}
	return release, true
}

// freePorts hands out single ports from blocks this test process holds
// until it exits.
var freePorts struct {
	sync.Mutex
	next, end int
}

// FreePort returns a TCP port on 127.0.0.1 that is free now, from a block
// this test process holds below the ephemeral range: no other test process
// hands it out and no loopback connection takes it as its source port, so a
// daemon can stop and listen on it again later. It is not handed out twice
// by this process.
func FreePort(t testing.TB) int {
	t.Helper()
	freePorts.Lock()
	defer freePorts.Unlock()
	for {
		for freePorts.next < freePorts.end {
			p := freePorts.next
			freePorts.next++
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
				_ = l.Close()
				return p
			}
		}
		// The block stays held until the process exits.
		freePorts.next, _ = takeBlocks(t, 1)
		freePorts.end = freePorts.next + portBlock
	}
}
