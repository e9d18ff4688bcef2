package daemon

import (
	"net/http"

	"aima/errs"
	"aima/gateway"
	"aima/httpapi"
	"aima/httperr"
	"aima/httpguard"
	"aima/jsonrpc"
	"aima/mcp"
	"aima/metrics"
	"aima/tools"
	"aima/web"
)

// routes mounts every front-end on the daemon's one HTTP server and puts
// the access guard (Host, Origin, content type, CORS, token and login
// cookie: package httpguard) in front of all of them. The daemon owns the
// root router: the HTTP API (/api/, /health), MCP (/mcp), JSON-RPC (/rpc),
// the OpenAI-compatible gateway (/v1/), the metrics and the dashboard each
// get their paths on it, and a path none of them serves is answered here
// with the common error body (httperr), not by one front-end speaking for
// the others. A new front-end is one more mount line here; it then sits
// behind the same guard.
//
// Every front-end runs operations through one caller, which counts them
// for /metrics; each front-end's requests are tagged with its name
// (metrics.Tag) so the count says where a call came from. The dashboard
// at /ui/ calls the HTTP API, so its calls count as HTTP.
func (d *Daemon) routes() (http.Handler, error) {
	g, err := httpguard.New(httpguard.Options{
		AllowedHosts: d.Config.AllowedHosts, AllowedOrigins: d.Config.AllowedOrigins, Token: d.opts.Token, Logger: d.log,
		// The dashboard's own files carry no data (it logs in for the
		// rest); /readyz says only whether this replica serves.
		Public: func(p string) bool { return web.Public(p) || p == "/readyz" },
	})
	if err != nil {
		return nil, err
	}
	root := http.NewServeMux()
	var patterns []string
	mount := func(pattern string, h http.Handler) {
		root.Handle(pattern, h)
		patterns = append(patterns, pattern)
	}
	caller := d.metrics.Caller(tools.LocalCaller{Domain: d.Domain})
	api := httpapi.New(d.Domain, caller, d.log) // /api/<group>/<verb>, /api/events, /health
	apiHandler := metrics.Tag(tools.FrontendHTTP, api.Handler())
	for _, p := range []string{"/api/", "/health"} {
		root.Handle(p, apiHandler) // its own patterns are listed below
	}
	mount(mcp.Path, metrics.Tag(tools.FrontendMCP, d.mcpHandler(caller)))
	mount(jsonrpc.Path, metrics.Tag(tools.FrontendJSONRPC, jsonrpc.Handler(caller, jsonrpc.Options{ReadOnly: d.Domain.ReadOnly})))
	mount(gateway.Path, gateway.New(d.Domain.Inference, d.log))
	mount("GET /readyz", d.readyz())
	d.metrics.Mount(mount) // /metrics, /metrics/engines, /metrics/targets
	ui := web.Handler(web.Options{TokenRequired: g.TokenRequired, Authorized: g.Authorized})
	for _, p := range []string{web.Prefix, "/ui", "GET /{$}"} {
		mount(p, ui)
	}
	mount("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httperr.Write(w, 0, errs.NotFoundf("no route %s %s; see docs/reference/http.md for the daemon's routes", r.Method, r.URL.Path))
	}))
	d.patterns = append(append(api.Patterns(), patterns...), httpguard.Paths()...)
	return g.Wrap(httperr.Recover(d.log, root)), nil
}

// Routes lists every route the daemon serves, in net/http.ServeMux pattern
// syntax: the HTTP API's patterns (one per operation under /api, the
// streams, /health), each path mounted on the root router (/mcp, /rpc,
// /v1/, /metrics, the dashboard and the catch-all "/") and the paths the
// guard answers itself (login and logout). It is recorded as the routes are mounted, so it cannot drift
// from them; the guard's browser matrix checks that it covers them all.
func (d *Daemon) Routes() []string { return append([]string(nil), d.patterns...) }

// mcpHandler serves MCP over streamable HTTP, with the tools running in the
// daemon itself. Access (Host, Origin, token) is the guard's.
func (d *Daemon) mcpHandler(caller tools.Caller) http.Handler {
	s := mcp.NewServer(caller, mcp.Options{ReadOnly: d.Domain.ReadOnly, Version: d.Domain.Version, Context: d.bg, Logger: d.log})
	return mcp.Handler(s, mcp.HTTPOptions{Logger: d.log})
}
