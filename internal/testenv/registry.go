package testenv

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/moby/moby/client"
)

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryConfig)

type registryConfig struct{ bytesPerSec int64 }

// WithBandwidth caps how fast the registry serves blobs, so that a pull over
// loopback lasts long enough to show many progress messages (the engine
// reports progress at most every ~100 ms; an unthrottled loopback pull of
// tens of MB produces one or two).
func WithBandwidth(bytesPerSec int64) RegistryOption {
	return func(c *registryConfig) { c.bytesPerSec = bytesPerSec }
}

// StartRegistry starts an in-memory OCI registry on 127.0.0.1 with a random
// port and returns its host:port. The engine trusts 127.0.0.0/8 registries
// over plain HTTP by default, so `<host>/repo:tag` can be pushed and pulled
// without TLS or daemon configuration (the engine must share the host's
// network namespace). The registry stops when the test ends.
func StartRegistry(t testing.TB, opts ...RegistryOption) string {
	t.Helper()
	var cfg registryConfig
	for _, o := range opts {
		o(&cfg)
	}
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if cfg.bytesPerSec > 0 {
		h = throttle(h, cfg.bytesPerSec)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// throttle paces blob downloads (GET .../blobs/...) to bytesPerSec.
func throttle(next http.Handler, bytesPerSec int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			w = &pacedWriter{ResponseWriter: w, ctx: r.Context(), rate: bytesPerSec, start: time.Now()}
		}
		next.ServeHTTP(w, r)
	})
}

type pacedWriter struct {
	http.ResponseWriter
	ctx   context.Context
	rate  int64
	start time.Time
	sent  int64
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), 32<<10)]
		n, err := p.ResponseWriter.Write(chunk)
		written += n
		p.sent += int64(n)
		if err != nil {
			return written, err
		}
		if f, ok := p.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		b = b[n:]
		// Wait until the bytes sent so far are due at the target rate.
		due := p.start.Add(time.Duration(p.sent * int64(time.Second) / p.rate))
		if d := time.Until(due); d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-p.ctx.Done():
				timer.Stop()
				return written, p.ctx.Err()
			}
		}
	}
	return written, nil
}

// emptyAuth is base64("{}"): the engine wants some X-Registry-Auth header on
// push, and an anonymous one is enough for the loopback registry.
var emptyAuth = base64.URLEncoding.EncodeToString([]byte("{}"))

// PushToRegistry tags srcRef as dstRef (e.g. "127.0.0.1:PORT/aima/sim:1") and
// pushes it through the engine. The local dstRef tag is removed when the test
// ends (so is an image pulled back under that name); call RemoveImage first
// to make a later pull download for real.
func PushToRegistry(t testing.TB, srcRef, dstRef string) {
	t.Helper()
	c := DockerClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: srcRef, Target: dstRef}); err != nil {
		t.Fatalf("tag %s as %s: %v", srcRef, dstRef, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		removeImage(ctx, t, c, dstRef)
	})
	resp, err := c.ImagePush(ctx, dstRef, client.ImagePushOptions{RegistryAuth: emptyAuth})
	if err != nil {
		t.Fatalf("push %s: %v", dstRef, err)
	}
	defer resp.Close()
	if err := drainJSON(resp, "push "+dstRef); err != nil {
		t.Fatal(err)
	}
}
