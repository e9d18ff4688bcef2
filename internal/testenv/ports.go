package testenv

import (
	"testing"

	"aima/internal/testenv/testports"
)

// FreePort returns a TCP port on 127.0.0.1 that is free now, below the
// kernel's ephemeral ports and held for this test process (see testports).
func FreePort(t testing.TB) int { return testports.FreePort(t) }

// PortRange reserves span+1 consecutive host ports (LOW-HIGH, both
// included) below the ephemeral ports for the test and returns the first.
func PortRange(t testing.TB, span int) int { return testports.PortRange(t, span) }
