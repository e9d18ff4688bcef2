package testports

import "testing"

// Ports for daemons and services come from below the ephemeral range (where
// no loopback connection takes them as its source port), and no two
// reservations share one: a range's lock file is taken by a second open
// file, in this process as in another.
func TestFreePortAndPortRange(t *testing.T) {
	low := EphemeralLow()
	seen := map[int]bool{}
	for range 3 {
		p := FreePort(t)
		if p < portBase || p >= low || seen[p] {
			t.Errorf("FreePort %d: want a new port in %d-%d", p, portBase, low-1)
		}
		seen[p] = true
	}
	a, b := PortRange(t, 20), PortRange(t, 250)
	if a < portBase || a+20 >= low || b < portBase || b+250 >= low {
		t.Errorf("ranges %d-%d and %d-%d: want them below %d", a, a+20, b, b+250, low)
	}
	if a <= b+250 && b <= a+20 {
		t.Errorf("ranges %d-%d and %d-%d overlap", a, a+20, b, b+250)
	}
	for p := range seen {
		if (p >= a && p <= a+20) || (p >= b && p <= b+250) {
			t.Errorf("FreePort %d lies in a reserved range", p)
		}
	}
}
