package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"aima/internal/testenv"
)

// promServer is a real Prometheus server (Debian's prometheus package) run
// by a test as a subprocess: loopback only, a temporary storage dir, a 1 s
// scrape interval.
type promServer struct {
	URL string
	log *testenv.SyncBuffer
}

// promJob is one scrape job of the test's Prometheus.
type promJob struct {
	Name, Target, Path, Token string
}

// startPrometheus starts Prometheus scraping jobs every second and waits
// until it is ready. It fails, never skips, when prometheus is not
// installed. The process is killed when the test ends.
func startPrometheus(t *testing.T, jobs ...promJob) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("the Prometheus server is needed (apt-get install prometheus): %v", err)
	}
	dir := t.TempDir()
	cfg := "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
	for _, j := range jobs {
		cfg += fmt.Sprintf("  - job_name: %s\n    metrics_path: %s\n    static_configs: [{targets: [%q]}]\n", j.Name, j.Path, j.Target)
		if j.Token != "" {
			tf := filepath.Join(dir, j.Name+".token")
			if err := os.WriteFile(tf, []byte(j.Token+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg += fmt.Sprintf("    authorization: {type: Bearer, credentials_file: %q}\n", tf)
		}
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	log := &testenv.SyncBuffer{}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--storage.tsdb.retention.time=1h", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the test binary
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s\nconfig:\n%s", log.String(), cfg)
		}
	})
	p := &promServer{URL: "http://" + addr, log: log}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30 s:\n%s", log.String())
		}
	}
}

// promSample is one series of an instant query's result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// value is the sample's value as a number.
func (s promSample) value() float64 {
	str, _ := s.Value[1].(string)
	v, _ := strconv.ParseFloat(str, 64)
	return v
}

// query runs an instant query through Prometheus's HTTP API.
func (p *promServer) query(t *testing.T, q string) []promSample {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, out.Error)
	}
	return out.Data.Result
}

// await polls query until check accepts its result (Prometheus scrapes
// every second), failing after a minute with the last result.
func (p *promServer) await(t *testing.T, q string, check func([]promSample) bool) []promSample {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res := p.query(t, q)
		if check(res) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus query %s: %+v after a minute", q, res)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// equals accepts a result of exactly one series with value v.
func equals(v float64) func([]promSample) bool {
	return func(r []promSample) bool { return len(r) == 1 && r[0].value() == v }
}
