package jsonrpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aima/client"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/jsonrpc"
	"aima/runtime/docker"
)

// TestBatchFloodKeepsDockerHealthy reproduces, scaled down, parallel POSTs
// of large health.check batches: an oversized batch is refused whole, and
// full-size batches sent in parallel are all answered with Docker reachable
// while the engine never sees more connections than the daemon's cap.
func TestBatchFloodKeepsDockerHealthy(t *testing.T) {
	testenv.RequireDocker(t)
	proxy := testenv.StartSockProxy(t, testenv.DockerSocket(t))
	t.Setenv("DOCKER_HOST", proxy.Host())
	d := daemontest.Start(t, testenv.SimConfig(t, testenv.SimConfigOptions{Image: testenv.EngineSimRef}),
		daemontest.Options{})

	big := rpcHTTP(t, d.URL, false, batch(10*jsonrpc.DefaultMaxBatch))
	if m := big[0]; m.Error == nil || m.Error.Code != jsonrpc.CodeInvalidRequest {
		t.Fatalf("oversized batch: %+v, want one -32600", m)
	}

	const posts = 9
	var wg sync.WaitGroup
	failures := make(chan string, posts*jsonrpc.DefaultMaxBatch)
	for range posts {
		wg.Go(func() {
			resp, err := http.Post(d.URL+"/rpc", "application/json", strings.NewReader(batch(jsonrpc.DefaultMaxBatch)))
			if err != nil {
				failures <- err.Error()
				return
			}
			defer resp.Body.Close()
			var replies []struct {
				Result *struct {
					Docker string `json:"docker"`
				} `json:"result"`
				Error *jsonrpc.Error `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&replies); err != nil || len(replies) != jsonrpc.DefaultMaxBatch {
				failures <- fmt.Sprintf("batch reply: %v (%d replies)", err, len(replies))
				return
			}
			for _, r := range replies {
				if r.Error != nil || r.Result == nil || r.Result.Docker != "ok" {
					failures <- fmt.Sprintf("health.check: %+v", r)
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	n := 0
	for f := range failures {
		if n++; n <= 5 {
			t.Error(f)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d calls failed", n, posts*jsonrpc.DefaultMaxBatch)
	}
	// The cap, plus connections the moby client is closing (it keeps two
	// idle ones per host, so a burst churns) that the proxy has not yet
	// seen end. Without the limits this is one per call in flight.
	if peak := proxy.PeakLive(); peak > 2*docker.DefaultMaxCalls {
		t.Errorf("%d connections to Docker at once, want at most %d", peak, 2*docker.DefaultMaxCalls)
	}
}

// countingDialer counts the client's open connections to the daemon.
type countingDialer struct {
	open, peak atomic.Int64
}

func (c *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n := c.open.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return &countedConn{Conn: conn, c: c}, nil
}

type countedConn struct {
	net.Conn
	c    *countingDialer
	once sync.Once
}

func (cc *countedConn) Close() error {
	cc.once.Do(func() { cc.c.open.Add(-1) })
	return cc.Conn.Close()
}

// TestRelayedBatchIsBounded reproduces, scaled down, a stdio batch of
// service.wait calls relayed through the daemon's HTTP API (as `aima rpc`
// does with client.Caller): the relay opens at most BatchConcurrency
// connections to the daemon (plus idle ones), not one per element.
func TestRelayedBatchIsBounded(t *testing.T) {
	testenv.RequireDocker(t)
	d := daemontest.Start(t, testenv.SimConfig(t, testenv.SimConfigOptions{Image: testenv.EngineSimRef}), daemontest.Options{})
	c := client.New(d.URL)
	dialer := &countingDialer{}
	c.HTTP = &http.Client{Transport: &http.Transport{DialContext: dialer.dial}}
	raw, err := c.Call(t.Context(), "service_create", map[string]any{"model_id": "org/model", "engine_type": "vllm"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var svc struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &svc); err != nil {
		t.Fatal(err)
	}
	const n = 60
	parts := make([]string, n)
	for i := range parts {
		parts[i] = request(i, "service.wait", map[string]any{"service_id": svc.ID, "for": "running", "timeout_seconds": 1})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := jsonrpc.Serve(ctx, strings.NewReader("["+strings.Join(parts, ",")+"]\n"), &out, client.Caller{Client: c}, jsonrpc.Options{}); err != nil {
		t.Fatal(err)
	}
	var replies []msg
	if err := json.Unmarshal([]byte(out.String()), &replies); err != nil || len(replies) != n {
		t.Fatalf("batch reply: %v: %s", err, out.String())
	}
	for _, r := range replies {
		if r.Error == nil || r.Error.Data == nil || r.Error.Data.Kind != "deadline_exceeded" {
			t.Fatalf("service.wait of a service that never starts: %+v, want deadline_exceeded", r)
		}
	}
	if peak := dialer.peak.Load(); peak > jsonrpc.DefaultBatchConcurrency+2 {
		t.Errorf("%d connections to the daemon at once for one batch, want at most %d", peak, jsonrpc.DefaultBatchConcurrency+2)
	}
}
