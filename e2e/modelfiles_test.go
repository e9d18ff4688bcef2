//go:build unix

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"aima/internal/testenv"
	"aima/internal/testenv/specialfiles"
)

// Hostile model paths through the built daemon's HTTP API (no Docker
// needed): a FIFO x.gguf, a FIFO config.json, a config.json linked to
// /dev/zero and a character device dev.gguf are each refused with 400
// invalid_argument naming the path; a scan of their directory registers
// only the sound model and skips the rest with a note; and, the
// thread-exhaustion finding scaled down, many concurrent FIFO adds all
// answer and pin no threads, and the daemon still answers afterwards.
func TestModelPathsSpecialFilesOverHTTP(t *testing.T) {
	set := specialfiles.Make(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{Image: testenv.EngineSimRef})})
	type apiErr struct {
		Error struct{ Code, Message, Field string }
	}
	for name, path := range set.Hostile() {
		code, body, err := d.Post("/api/model/add", map[string]string{"path": path})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var e apiErr
		_ = json.Unmarshal(body, &e)
		if code != 400 || e.Error.Code != "invalid_argument" || e.Error.Field != "path" || !strings.Contains(e.Error.Message, path) || !strings.Contains(e.Error.Message, "not a regular file") {
			t.Errorf("%s: POST /api/model/add = %d %s", name, code, body)
		}
	}
	code, body, err := d.Post("/api/model/scan", map[string]string{"dir": set.Dir})
	var scan struct {
		Items   []struct{ Path string }
		Skipped []struct{ Path, Reason string }
	}
	if err != nil || code != 200 || json.Unmarshal(body, &scan) != nil {
		t.Fatalf("POST /api/model/scan = %d %s %v", code, body, err)
	}
	if len(scan.Items) != 1 || scan.Items[0].Path != set.Good || len(scan.Skipped) != len(set.Hostile()) {
		t.Fatalf("scan: %s", body)
	}

	threads := func() int {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.PID()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(l, "Threads:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
		t.Fatal("no Threads line in /proc status")
		return 0
	}
	before := threads()
	const n = 200
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, err := d.Post("/api/model/add", map[string]string{"path": set.FIFOGGUF})
			if err != nil {
				code = -1
			}
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 400 {
			t.Fatalf("a concurrent FIFO add answered %d, want 400", c)
		}
	}
	after := threads()
	t.Logf("daemon threads: %d before, %d after %d concurrent FIFO adds", before, after, n)
	if after >= n/2 {
		t.Errorf("the daemon has %d threads after %d FIFO adds: adds pin threads", after, n)
	}
	if code, _, err := d.Get("/health"); err != nil || code != 200 {
		t.Fatalf("/health after the adds: %d %v", code, err)
	}
	if code, _, err := d.Get("/api/model/list"); err != nil || code != 200 {
		t.Fatalf("model list after the adds: %d %v", code, err)
	}
}
