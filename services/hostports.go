package services

import (
	"fmt"

	"aima/internal/kernelports"
)

// PortRangeWarning says what to do when port_range overlaps the kernel's
// ephemeral ports, or "" when it does not (or the kernel does not say).
// Ports there are taken now and then as the source port of some outgoing
// connection, so a service's kept port is found in use at a start, at
// random: an operator should learn that from doctor, not from a failure.
func (m *Manager) PortRangeWarning() string {
	lo, hi, ok := kernelports.Ephemeral(m.ephemeralFile)
	if !ok || m.opts.PortHigh < lo || m.opts.PortLow > hi {
		return ""
	}
	return fmt.Sprintf("port_range %d-%d overlaps the kernel's ephemeral ports %d-%d (net.ipv4.ip_local_port_range), which outgoing connections take as their source ports: a service's port there can be in use by another process at its next start (port_in_use); choose a port_range outside them, such as the default 18000-18999", m.opts.PortLow, m.opts.PortHigh, lo, hi)
}

// portInUseHint explains a host port found in use when it lies among the
// kernel's ephemeral ports, or "".
func (m *Manager) portInUseHint(port int) string {
	lo, hi, ok := kernelports.Ephemeral(m.ephemeralFile)
	if !ok || port < lo || port > hi {
		return ""
	}
	return fmt.Sprintf(" (it lies among the kernel's ephemeral ports %d-%d, which outgoing connections take as their source ports; see `aima doctor`)", lo, hi)
}
