package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/tools"
)

// floodService creates a service (never started) and runs a container of
// internal/testenv/testprog labelled as its container, which prints n lines
// of size bytes and exits. It returns the service and container IDs.
func floodService(t *testing.T, create func() string, n, size int) (svc, cid string) {
	t.Helper()
	svc = create()
	t.Cleanup(func() { testenv.RemoveContainersWithLabel(t, "aima.service", svc) })
	out, err := exec.Command("docker", "run", "-d", "--label", "aima.managed=true", "--label", "aima.service="+svc,
		testenv.TestProgImage(t), "err:first on stderr", "sleep:300ms", fmt.Sprintf("flood:%d:%d", n, size)).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	cid = strings.TrimSpace(string(out))
	if out, err := exec.Command("docker", "wait", cid).CombinedOutput(); err != nil {
		t.Fatalf("docker wait: %v: %s", err, out)
	}
	return svc, cid
}

// Every representation of service_logs carries the same lines as `docker
// logs`: the CLI's text (whole and with timestamps), its JSON document, the
// HTTP JSON document and the HTTP plain text.
func TestLogsRepresentations(t *testing.T) {
	testenv.RequireDocker(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{Image: testenv.EngineSimRef})})
	const n = 20000
	svc, cid := floodService(t, func() string {
		return testenv.DecodeJSON[struct{ ID string }](t, d.MustCLI(t, "service", "create", "--model-id", "org/flood", "--engine-type", "vllm", "-o", "json").Stdout).ID
	}, n, 100)
	// docker logs writes the two streams to its stdout and stderr; the
	// stderr line was written 300 ms before the flood.
	var dockerOut, dockerErr bytes.Buffer
	cmd := exec.Command("docker", "logs", cid)
	cmd.Stdout, cmd.Stderr = &dockerOut, &dockerErr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSuffix(dockerErr.String()+dockerOut.String(), "\n"), "\n")
	if len(want) != n+1 || want[0] != "first on stderr" {
		t.Fatalf("docker logs printed %d lines, first %q", len(want), want[0])
	}
	wantText := strings.Join(want, "\n") + "\n"

	if got := d.MustCLI(t, "service", "logs", svc, "--tail", "-1").Stdout; got != wantText {
		t.Errorf("CLI text differs from docker logs (%d vs %d bytes)", len(got), len(wantText))
	}
	if got := d.MustCLI(t, "service", "logs", svc, "--tail", "3").Stdout; got != strings.Join(want[len(want)-3:], "\n")+"\n" {
		t.Errorf("CLI --tail 3: %q", got)
	}
	stamped := strings.Split(strings.TrimSuffix(d.MustCLI(t, "service", "logs", svc, "--tail", "-1", "--timestamps").Stdout, "\n"), "\n")
	if len(stamped) != len(want) {
		t.Fatalf("CLI --timestamps: %d lines, want %d", len(stamped), len(want))
	}
	for i, l := range stamped {
		ts, text, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || text != want[i] {
			t.Fatalf("CLI --timestamps line %d = %q", i, l)
		}
	}

	checkDoc := func(what string, raw []byte) {
		t.Helper()
		var doc tools.LogsOutput
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: not one JSON document: %v", what, err)
		}
		if doc.ServiceID != svc || doc.Total != len(want) || len(doc.Lines) != len(want) {
			t.Fatalf("%s: service %s, total %d, %d lines; want %s, %d", what, doc.ServiceID, doc.Total, len(doc.Lines), svc, len(want))
		}
		for i, l := range doc.Lines {
			if l.Text != want[i] || l.Time.IsZero() || (i == 0) != (l.Stream == "stderr") {
				t.Fatalf("%s: line %d = %+v, want %q", what, i, l, want[i])
			}
		}
	}
	checkDoc("CLI -o json", []byte(d.MustCLI(t, "service", "logs", svc, "--tail", "-1", "-o", "json").Stdout))
	code, body, err := d.Get("/api/service/logs?tail=-1&service_id=" + svc)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET logs: %d %v", code, err)
	}
	checkDoc("HTTP JSON", body)

	req, _ := http.NewRequest(http.MethodGet, d.URL()+"/api/service/logs?tail=-1&service_id="+svc, nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || string(text) != wantText {
		t.Fatalf("HTTP text/plain: %d %q, %d bytes (want %d), %v", resp.StatusCode, resp.Header.Get("Content-Type"), len(text), len(wantText), err)
	}
	if r := d.CLI(t, "service", "logs", "svc-nope"); r.Code != 3 || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("logs of an unknown service: exit %d: %s", r.Code, r.Stderr)
	}
}

// A whole log streamed over HTTP is never held in the daemon's memory: the
// heap in use while 200,000 lines (20 MB of text, 34 MB of JSON) go
// through stays far below the log's size. The collector runs at a tenth of
// its usual goal meanwhile, so the peak measures what is held, not how much
// garbage the process's own heap size lets pile up before a collection.
func TestLogsStreamInBoundedMemory(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	p := newInproc(t)
	const n, size = 200000, 100
	svc, _ := floodService(t, func() string { return p.createService(t, tools.ServiceCreateInput{Name: "flood"}).ID }, n, size)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	resp, err := http.Get(p.URL + "/api/service/logs?tail=-1&service_id=" + svc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	close(stop)
	wg.Wait()
	if err != nil || resp.StatusCode != http.StatusOK || got < n*size {
		t.Fatalf("GET logs: HTTP %d, %d bytes, %v", resp.StatusCode, got, err)
	}
	grew := int64(peak) - int64(base.HeapInuse)
	t.Logf("heap in use grew by %.1f MiB while %.1f MiB of JSON streamed", float64(grew)/(1<<20), float64(got)/(1<<20))
	if limit := int64(n * size / 2); grew > limit {
		t.Errorf("the heap grew by %d bytes while streaming a %d-byte log: the log is being held in memory", grew, n*size)
	}
}
