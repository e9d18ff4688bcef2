package httpguard

import (
	"net"
	"net/netip"
)

// ClientKey is what the per-client bounds (connections, failed logins)
// count by: the client's IPv4 address, or the /64 its IPv6 address is in
// (one host on an IPv6 network usually holds a whole /64, so counting
// single addresses would let it multiply its allowance). Clients behind a
// proxy share the proxy's address: forwarded headers are not trusted.
type ClientKey netip.Prefix

// clientKeyOf returns the key of a remote address (host:port, as
// http.Request.RemoteAddr and net.Conn.RemoteAddr give it). Anything that
// is not an IP address (a Unix socket) shares one key.
func clientKeyOf(remote string) ClientKey {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ClientKey{}
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return ClientKey(p)
}

// String is the address (IPv4) or prefix (IPv6) the key stands for.
func (k ClientKey) String() string {
	p := netip.Prefix(k)
	switch {
	case !p.IsValid():
		return "unknown"
	case p.Addr().Is4():
		return p.Addr().String()
	}
	return p.String()
}
