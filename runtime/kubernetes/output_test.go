package kubernetes

import (
	"strings"
	"testing"
)

// What a kubelet (or an engine writing its termination-message file) puts
// in a terminated state is read as bounded lines, whatever its size; a
// first line the kubelet's 2 KiB cut made partial is dropped.
func TestOutputLines(t *testing.T) {
	if got := outputLines(""); got != nil {
		t.Errorf("empty message: %q", got)
	}
	if got := outputLines("a\r\nb\n"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("two lines: %q", got)
	}
	cut := strings.Repeat("x", 100) + "\n" + strings.Repeat("line\n", (kubeletOutputBytes-101)/5+1)
	if got := outputLines(cut); got[0] != "line" {
		t.Errorf("the partial first line was kept: %q", got[0])
	}
	huge := strings.Repeat("y", 1<<20) + "\n" + strings.Repeat("z\n", 10000)
	got := outputLines(huge)
	if len(got) != maxOutputLines || strings.Join(got, "") != strings.Repeat("z", maxOutputLines) {
		t.Errorf("a hostile message: %d lines, want the last %d", len(got), maxOutputLines)
	}
}
