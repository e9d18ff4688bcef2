package services

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ephemeralPortsFile is where Linux says which ports it hands out as the
// source ports of outgoing connections (net.ipv4.ip_local_port_range).
const ephemeralPortsFile = "/proc/sys/net/ipv4/ip_local_port_range"

// ephemeralPorts reads the kernel's ephemeral port range; ok is false where
// the file is missing or unreadable (not Linux).
func ephemeralPorts(path string) (lo, hi int, ok bool) {
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

// PortRangeWarning says what to do when port_range overlaps the kernel's
// ephemeral ports, or "" when it does not (or the kernel does not say).
// Ports there are taken now and then as the source port of some outgoing
// connection, so a service's kept port is found in use at a start, at
// random: an operator should learn that from doctor, not from a failure.
func (m *Manager) PortRangeWarning() string {
	lo, hi, ok := ephemeralPorts(m.ephemeralFile)
	if !ok || m.opts.PortHigh < lo || m.opts.PortLow > hi {
		return ""
	}
	return fmt.Sprintf("port_range %d-%d overlaps the kernel's ephemeral ports %d-%d (net.ipv4.ip_local_port_range), which outgoing connections take as their source ports: a service's port there can be in use by another process at its next start (port_in_use); choose a port_range outside them, such as the default 18000-18999", m.opts.PortLow, m.opts.PortHigh, lo, hi)
}

// portInUseHint explains a host port found in use when it lies among the
// kernel's ephemeral ports, or "".
func (m *Manager) portInUseHint(port int) string {
	lo, hi, ok := ephemeralPorts(m.ephemeralFile)
	if !ok || port < lo || port > hi {
		return ""
	}
	return fmt.Sprintf(" (it lies among the kernel's ephemeral ports %d-%d, which outgoing connections take as their source ports; see `aima doctor`)", lo, hi)
}
