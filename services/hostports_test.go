package services

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// kernelPorts writes an ip_local_port_range file and points the manager
// at it.
func kernelPorts(t *testing.T, m *Manager, content string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ip_local_port_range")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	m.ephemeralFile = path
}

// doctor warns about a port_range that overlaps the kernel's ephemeral
// ports, and only then.
func TestPortRangeWarning(t *testing.T) {
	t.Parallel()
	cases := []struct {
		lo, hi int
		kernel string
		warn   bool
	}{
		{18000, 18999, "32768\t60999\n", false},
		{40000, 41000, "32768\t60999\n", true},
		{30000, 32768, "32768\t60999\n", true},
		{60999, 61010, "32768 60999", true},
		{61000, 62000, "32768\t60999\n", false},
		{40000, 41000, "garbage", false},
		{40000, 41000, "", false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d-%d/%q", tc.lo, tc.hi, tc.kernel), func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.PortLow, o.PortHigh = tc.lo, tc.hi })
			kernelPorts(t, h.m, tc.kernel)
			w := h.m.PortRangeWarning()
			if got := w != ""; got != tc.warn {
				t.Fatalf("warning %q, want one: %v", w, tc.warn)
			}
			if tc.warn && !strings.Contains(w, fmt.Sprintf("port_range %d-%d", tc.lo, tc.hi)) {
				t.Errorf("warning %q does not name the range", w)
			}
		})
	}
	h := newHarness(t, nil)
	h.m.ephemeralFile = filepath.Join(t.TempDir(), "missing")
	if w := h.m.PortRangeWarning(); w != "" {
		t.Errorf("without the kernel's file: %q", w)
	}
}

// A port found in use that lies among the ephemeral ports says so in the
// failure's reason.
func TestPortInUseNamesEphemeralPorts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	s := h.create(serving(), nil)
	kernelPorts(t, h.m, fmt.Sprintf("%d %d\n", s.Port-5, s.Port+5))
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h.start(s.ID)
	got := h.awaitStatus(s.ID, StatusFailed)
	wantFailed(t, got, FailurePortInUse, PhaseCreate, "in use by another process", "ephemeral ports", "aima doctor")
}
