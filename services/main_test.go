package services

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain runs the package's tests, then, when the whole package ran and
// passed, checks that together they took every edge of the transition
// table: an edge added to the table without a test that takes it fails the
// run. (With -run, -skip or -list only part of the tests run, so the check
// is left out.)
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && wholeRun() {
		if missing := untakenEdges(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test takes these edges of the transition table (services/status.go): %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}

func wholeRun() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// untakenEdges lists the table's edges no test went through.
func untakenEdges() []string {
	seenMu.Lock()
	defer seenMu.Unlock()
	var out []string
	for _, from := range AllStatuses {
		for _, to := range transitions[from] {
			if !seenEdges[[2]Status{from, to}] {
				out = append(out, string(from)+" → "+string(to))
			}
		}
	}
	return out
}
