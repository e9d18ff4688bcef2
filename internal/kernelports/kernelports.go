// Package kernelports reads which ports the Linux kernel hands out as the
// source ports of outgoing connections (net.ipv4.ip_local_port_range). A
// port there can be taken by any connection for a while, so neither
// services' host ports nor the tests' ports should come from it.
package kernelports

import (
	"os"
	"strconv"
	"strings"
)

// File is where Linux says it.
const File = "/proc/sys/net/ipv4/ip_local_port_range"

// Ephemeral reads the range from path (File, or a copy in a test); ok is
// false where the file is missing or unreadable (not Linux).
func Ephemeral(path string) (lo, hi int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo <= 0 || hi < lo {
		return 0, 0, false
	}
	return lo, hi, true
}
