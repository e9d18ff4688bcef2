package docker

import (
	"context"

	"github.com/moby/moby/client"

	"aima/runtime"
)

// Docker is the runtime.Runtime backed by a Docker engine.
type Docker struct {
	c *client.Client
}

var _ runtime.Runtime = (*Docker)(nil)

type config struct {
	host      string
	userAgent string
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

// New returns a Docker runtime configured from the environment (DOCKER_HOST,
// DOCKER_API_VERSION, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY) with API version
// negotiation on, so one binary talks to old (API 1.41) and new engines. It
// does not contact the engine; call Ping for that.
func New(opts ...Option) (*Docker, error) {
	cfg := config{userAgent: "aima"}
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
	return &Docker{c: c}, nil
}

// Close releases the client's idle connections. Streams already open keep
// running until their contexts end.
func (d *Docker) Close() error { return d.c.Close() }

// Ping checks that the engine answers, within the caller's ctx: an absent
// socket or refused connection fails at once with errs.Unavailable instead of
// hanging.
func (d *Docker) Ping(ctx context.Context) error {
	_, err := d.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return classify(err, "ping docker engine")
}
