package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
)

// BenchmarkConnectionFlood measures what a flood of 3,000 connections,
// each sending the headers and the first byte ("{") of a 1 MiB body, costs
// an `aima start` daemon: open file descriptors, goroutines and resident
// memory, read from its own /metrics (from another loopback address)
// before the flood and once every flood connection has been accepted.
// It runs twice in the same run: with the http limits lifted (no
// connection bound; body and idle timeouts of a day: the daemon as it was
// before they existed) and with the defaults. The figures go to
// docs/performance.md; nothing here is a pass/fail limit.
//
//	go test ./daemon/ -run '^$' -bench ConnectionFlood -benchtime 1x
func BenchmarkConnectionFlood(b *testing.B) {
	const flood = 3000
	bin := testenv.BuildAima(b)
	for _, c := range []struct{ name, http string }{
		{"limits-lifted", "http:\n  max_connections: 1000000\n  max_connections_per_client: 1000000\n  body_timeout: 24h\n  idle_timeout: 24h\n"},
		{"defaults", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				cfg := testenv.SimConfig(b, testenv.SimConfigOptions{Image: "aima-unused:1", Extra: c.http})
				d := testenv.StartDaemon(b, testenv.DaemonOptions{Config: cfg, Bin: bin})
				before := daemonFigures(b, d.URL())
				conns := make([]net.Conn, 0, flood)
				for range flood {
					conn, err := net.Dial("tcp", d.Addr)
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, conn)
					_, _ = io.WriteString(conn, "POST /api/service/list HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{")
				}
				// Every flood connection is accepted: held or refused.
				var during map[string]float64
				for during = daemonFigures(b, d.URL()); during["aima_http_connections_open"]+during[`aima_http_connections_refused_total{reason="per_client"}`]+
					during[`aima_http_connections_refused_total{reason="total"}`] < flood+1; during = daemonFigures(b, d.URL()) {
					time.Sleep(100 * time.Millisecond)
				}
				for _, conn := range conns {
					_ = conn.Close()
				}
				for _, m := range []struct{ series, unit string }{
					{"process_open_fds", "fds"}, {"go_goroutines", "goroutines"}, {"process_resident_memory_bytes", "RSS-MiB"},
				} {
					scale := 1.0
					if m.unit == "RSS-MiB" {
						scale = 1 << 20
					}
					b.ReportMetric(before[m.series]/scale, m.unit+"-before")
					b.ReportMetric(during[m.series]/scale, m.unit+"-flood")
				}
				b.ReportMetric(during["aima_http_connections_open"]-1, "held")
				b.Logf("%s: before %v; during the flood %v", c.name, before, during)
			}
		})
	}
}

// daemonFigures reads the flood's figures from the daemon's /metrics,
// connecting from 127.0.0.9 (another client address than the flood's).
func daemonFigures(b *testing.B, url string) map[string]float64 {
	b.Helper()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}).DialContext}}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("/metrics: %d %s", resp.StatusCode, raw)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		for _, p := range []string{"process_open_fds ", "go_goroutines ", "process_resident_memory_bytes ", "aima_http_connections_"} {
			if strings.HasPrefix(line, p) {
				k, v, _ := strings.Cut(line, " ")
				out[k], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	if len(out) < 4 {
		b.Fatalf("/metrics lacks the figures: %s", fmt.Sprint(out))
	}
	return out
}
