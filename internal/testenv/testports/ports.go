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
	"strings"
	"sync"
	"testing"

	"aima/internal/filelock"
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
// (32768 where /proc does not say).
func EphemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= portBase {
		return 32768
	}
	return n
}

// PortRange reserves span consecutive host ports below the ephemeral range
// for the test and returns the first; the reservation ends with the test.
func PortRange(t testing.TB, span int) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "aima-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("port range: %v", err)
	}
	need := (span + portBlock) / portBlock // span+1 ports: LOW-HIGH includes both
	blocks := (EphemeralLow() - portBase) / portBlock
	if need > blocks {
		t.Fatalf("port range: %d ports do not fit below the ephemeral ports", span+1)
	}
	first := rand.IntN(blocks - need + 1)
	for i := range blocks - need + 1 {
		b := (first + i) % (blocks - need + 1)
		if unlock, ok := lockBlocks(t, dir, b, need); ok {
			t.Cleanup(unlock)
			return portBase + b*portBlock
		}
	}
	t.Fatalf("port range: every block of %d ports below %d is held by another test", span+1, EphemeralLow())
	return 0
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
		freePorts.next = reserveBlock(t)
		freePorts.end = freePorts.next + portBlock
	}
}

// reserveBlock takes one block for the rest of the process's life.
func reserveBlock(t testing.TB) int {
	dir := filepath.Join(os.TempDir(), "aima-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("free port: %v", err)
	}
	blocks := (EphemeralLow() - portBase) / portBlock
	first := rand.IntN(blocks)
	for i := range blocks {
		b := (first + i) % blocks
		if _, ok := lockBlocks(t, dir, b, 1); ok {
			return portBase + b*portBlock
		}
	}
	t.Fatalf("free port: every block of %d ports below %d is held by another test", portBlock, EphemeralLow())
	return 0
}
