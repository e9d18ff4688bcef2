package daemon

import (
	"net/http"

	"aima/gateway"
	"aima/httpapi"
	"aima/httpguard"
	"aima/jsonrpc"
	"aima/mcp"
	"aima/metrics"
	"aima/tools"
	"aima/web"
)

// routes mounts every front-end on the daemon's one HTTP server and puts
// the access guard (Host, Origin, content type, CORS, token and login
// cookie: package httpguard) in front of all of them. MCP (/mcp), JSON-RPC
// (/rpc), the OpenAI-compatible gateway (/v1), the metrics and the
// dashboard are mounted on the HTTP API's mux, so its catch-all "/" answers
// a path none of them serves with the HTTP API's error body. A new
// front-end is one more api.Handle line here; it then sits behind the same
// guard.
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
	caller := d.metrics.Caller(tools.LocalCaller{Env: d.Env})
	api := httpapi.New(d.Env, caller, d.log) // /api/<group>/<verb>, /api/events, /health
	api.Handle(mcp.Path, metrics.Tag(tools.FrontendMCP, d.mcpHandler(caller)))
	api.Handle(jsonrpc.Path, metrics.Tag(tools.FrontendJSONRPC, jsonrpc.Handler(caller, jsonrpc.Options{ReadOnly: d.Env.ReadOnly})))
	api.Handle(gateway.Path, gateway.New(d.Env.Inference, d.log))
	api.Handle("GET /readyz", d.readyz())
	d.metrics.Mount(api.Handle) // /metrics, /metrics/engines, /metrics/targets
	ui := web.Handler(web.Options{TokenRequired: g.TokenRequired, Authorized: g.Authorized})
	for _, p := range []string{web.Prefix, "/ui", "GET /{$}"} {
		api.Handle(p, ui)
	}
	d.patterns = append(api.Patterns(), httpguard.Paths()...)
	return g.Wrap(metrics.Tag(tools.FrontendHTTP, api.Handler())), nil
}

// Routes lists every route the daemon serves, in net/http.ServeMux pattern
// syntax: each pattern registered on its mux (one per operation under
// /api, the streams, /health, /mcp, /rpc, /v1/, /metrics, the dashboard
// and the catch-all "/") and the paths the guard answers itself (login and
// logout). It is recorded as the routes are mounted, so it cannot drift
// from them; the guard's browser matrix checks that it covers them all.
func (d *Daemon) Routes() []string { return append([]string(nil), d.patterns...) }

// mcpHandler serves MCP over streamable HTTP, with the tools running in the
// daemon itself. Access (Host, Origin, token) is the guard's.
func (d *Daemon) mcpHandler(caller tools.Caller) http.Handler {
	s := mcp.NewServer(caller, mcp.Options{ReadOnly: d.Env.ReadOnly, Version: d.Env.Version, Context: d.bg, Logger: d.log})
	return mcp.Handler(s, mcp.HTTPOptions{Logger: d.log})
}
