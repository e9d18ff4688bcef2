package httpguard

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Host matching: the guard compares a request's Host header with the
// allowed_hosts entries and its Origin header with allowed_origins, each in
// one canonical form.

// HostPattern is one allowed_hosts entry: a host name or IP address, and a
// port ("" for any port).
type HostPattern struct {
	Host string
	Port string
}

// Matches reports whether a request's Host header, split by SplitHost,
// matches the pattern.
func (p HostPattern) Matches(host, port string) bool {
	return p.Host == host && (p.Port == "" || p.Port == port)
}

// ParseHostPattern reads an allowed_hosts entry: "name", "name:port",
// "10.0.0.5", "[fd00::1]:9090".
func ParseHostPattern(s string) (HostPattern, error) {
	host, port, err := SplitHost(s)
	if err != nil || host == "" || strings.ContainsAny(host, "/*@ ") {
		return HostPattern{}, fmt.Errorf("allowed_hosts entry %q: want a host name or address, optionally with :port", s)
	}
	return HostPattern{Host: host, Port: port}, nil
}

// SplitHost splits a Host header value ("Name:9090", "[::1]:80", "name.")
// into a canonical host (lower case, no trailing dot, IPv6 without
// brackets) and its port ("" when absent).
func SplitHost(hostport string) (host, port string, err error) {
	host = hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("bad port in %q", hostport)
		}
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return "", "", fmt.Errorf("bad host %q", hostport)
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host, port, nil
}

// CanonicalOrigin reads a browser origin ("https://Dash.example",
// "http://127.0.0.1:5173") into the one form origins are compared in:
// scheme://host:port with the scheme's default port filled in. Only http and
// https origins with nothing after the authority are accepted; "null" is not
// an origin.
func CanonicalOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port] with scheme http or https", s)
	}
	host, port, err := SplitHost(u.Host)
	if err != nil || host == "" {
		return "", fmt.Errorf("origin %q: %v", s, err)
	}
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme + "://" + net.JoinHostPort(host, port), nil
}
