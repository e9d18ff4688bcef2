package kube

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// RequestCounter is a reverse proxy to a cluster's API server on loopback
// that counts every request it passes (a watch counts once, when it
// opens), for the figures of API requests at rest.
type RequestCounter struct {
	// URL is the proxy's plain-HTTP address; Kubeconfig a kubeconfig file
	// that points a client at it.
	URL, Kubeconfig string
	count           atomic.Int64
}

// Count is the number of requests passed so far.
func (r *RequestCounter) Count() int64 { return r.count.Load() }

// CountRequests serves a RequestCounter in front of c's API server until
// the test ends. The proxy is the authenticated hop: client-go sends no
// credentials to a plain-HTTP server.
func (c *Cluster) CountRequests(t testing.TB) *RequestCounter {
	t.Helper()
	target, err := url.Parse(c.Host)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &RequestCounter{URL: "http://" + ln.Addr().String(), Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	if err := os.WriteFile(r.Kubeconfig, []byte(Kubeconfig(r.URL, Token)), 0o600); err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", "Bearer "+Token)
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0), // watches cut at the end
		// The test API server's certificate is its own, on loopback.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 100},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.count.Add(1)
		rp.ServeHTTP(w, req)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}
