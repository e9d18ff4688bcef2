// Package inference is aima's inference gateway logic: which service
// answers a request's model name (served name, alias, service name or id,
// registered model id; the least busy of the ready ones), admitting the
// request through the serving layer (package serving, which starts, wakes
// or swaps the service in on demand and counts the request in flight),
// forwarding it to the engine with the model name rewritten, and
// accounting each request (tokens, time to first token) on the service's
// figures (Admission.Done) and the event bus. It speaks the OpenAI wire format to engines as a client; serving it
// to clients is the gateway front-end's job, so the same routing and
// on-demand start back the HTTP /v1 routes and the inference_chat
// operation alike.
package inference

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"aima/services"
	"aima/serving"
	"aima/settings"
)

// Options are the gateway's settings (the config file's gateway section).
type Options struct {
	// MaxQueue is how many requests may wait for one service to start,
	// wake or be swapped in; more are answered 503 with Retry-After.
	MaxQueue int
	// MaxWait is how long a request waits for that before it is answered
	// 503 with Retry-After (the start goes on).
	MaxWait time.Duration
	// MaxBody caps a request body (413 beyond).
	MaxBody int64
	// ReadOnly serves only services that run: a request that would
	// start, wake or swap one in is refused (the daemon's --read-only).
	ReadOnly bool
}

// DefaultOptions are the settings an unset field takes.
func DefaultOptions() Options {
	return Options{MaxQueue: settings.GatewayMaxQueue, MaxWait: settings.GatewayMaxWait, MaxBody: settings.GatewayMaxBody}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.MaxQueue <= 0 {
		o.MaxQueue = d.MaxQueue
	}
	if o.MaxWait <= 0 {
		o.MaxWait = d.MaxWait
	}
	if o.MaxBody <= 0 {
		o.MaxBody = d.MaxBody
	}
	return o
}

// Router routes inference requests to the services that serve their model
// (admitted by the serving layer, which starts or wakes them) and forwards
// them: the domain side of the /v1 gateway and of inference_chat.
type Router struct {
	m      *services.Manager  // the records it routes by
	sc     *serving.Scheduler // admission and the traffic figures
	opts   Options
	client *http.Client
	names  atomic.Pointer[nameIndex] // of the records last seen (see index)
}

// New builds a router over the service manager's records and its serving
// layer.
func New(m *services.Manager, sc *serving.Scheduler, opts Options) *Router {
	tr := &http.Transport{
		// Engines are on this host: no proxy, keep connections warm so a
		// request costs no handshake, never gzip (chunks must pass as
		// they come).
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &Router{m: m, sc: sc, opts: opts.withDefaults(), client: &http.Client{Transport: tr}}
}

// Options returns the effective settings.
func (g *Router) Options() Options { return g.opts }

// Close drops idle upstream connections.
func (g *Router) Close() { g.client.CloseIdleConnections() }
