package docker

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"

	"aima/runtime"
)

// Docker is the runtime.Runtime backed by a Docker engine.
type Docker struct {
	c *client.Client
	// calls bounds the request/response API calls in flight (see
	// DefaultMaxCalls); long streams (events, logs, wait, pull) and stops
	// (which wait out a grace period) are not counted.
	calls chan struct{}
}

// DefaultMaxCalls bounds the request/response calls to the engine in flight
// at once. Each holds a connection (a file descriptor on both sides), and a
// burst of callers (a JSON-RPC batch, many clients at once) must wait its
// turn instead of exhausting descriptors and failing as "docker engine
// unavailable" while the engine is fine.
const DefaultMaxCalls = 32

var _ runtime.Runtime = (*Docker)(nil)

type config struct {
	host      string
	userAgent string
	maxCalls  int
}

// Option configures New.
type Option func(*config)

// WithHost points the client at host (e.g. "unix:///tmp/proxy.sock" or
// "tcp://127.0.0.1:2375") instead of DOCKER_HOST or the default socket. Tests
// use it to put a proxy between aima and the engine.
func WithHost(host string) Option { return func(c *config) { c.host = host } }

// WithUserAgent sets the User-Agent header, so the engine's logs can tell aima
// apart from other clients.
func WithUserAgent(ua string) Option { return func(c *config) { c.userAgent = ua } }

// WithMaxCalls sets how many request/response calls may be in flight at
// once (default DefaultMaxCalls); a call beyond it waits, within its ctx.
func WithMaxCalls(n int) Option { return func(c *config) { c.maxCalls = n } }

// New returns a Docker runtime configured from the environment (DOCKER_HOST,
// DOCKER_API_VERSION, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY) with API version
// negotiation on, so one binary talks to old (API 1.41) and new engines. It
// does not contact the engine; call Ping for that.
func New(opts ...Option) (*Docker, error) {
	cfg := config{userAgent: "aima", maxCalls: DefaultMaxCalls}
	for _, o := range opts {
		o(&cfg)
	}
	copts := []client.Opt{client.FromEnv, client.WithUserAgent(cfg.userAgent)}
	if cfg.host != "" {
		copts = append(copts, client.WithHost(cfg.host))
	}
	c, err := client.New(copts...)
	if err != nil {
		return nil, err
	}
	return &Docker{c: c, calls: make(chan struct{}, max(cfg.maxCalls, 1))}, nil
}

// slot waits for a free call slot within ctx; the caller runs release when
// its call is answered. Ending ctx while waiting returns ctx's error, named
// by what.
func (d *Docker) slot(ctx context.Context, what string) (release func(), err error) {
	select {
	case d.calls <- struct{}{}:
		return func() { <-d.calls }, nil
	default:
	}
	select {
	case d.calls <- struct{}{}:
		return func() { <-d.calls }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: waiting for a free docker API slot: %w", what, context.Cause(ctx))
	}
}

// Close releases the client's idle connections. Streams already open keep
// running until their contexts end.
func (d *Docker) Close() error { return d.c.Close() }

// Ping checks that the engine answers, within the caller's ctx: an absent
// socket or refused connection fails at once with errs.Unavailable instead of
// hanging.
func (d *Docker) Ping(ctx context.Context) error {
	release, err := d.slot(ctx, "ping docker engine")
	if err != nil {
		return err
	}
	defer release()
	_, err = d.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return classify(err, "ping docker engine")
}
