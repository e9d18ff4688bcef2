package daemon

import (
	"net/http"

	"aima/gateway"
	"aima/httpapi"
	"aima/httpguard"
	"aima/jsonrpc"
	"aima/mcp"
	"aima/tools"
)

// routes mounts every front-end on the daemon's one HTTP server and puts
// the access guard (Host, Origin, content type, CORS, token and login
// cookie: package httpguard) in front of all of them. A new front-end (a web
// UI at /ui/, Prometheus metrics at /metrics, an OpenAI-compatible gateway at
// /v1) is one more api.Handle line here; it then sits behind the same guard.
func (d *Daemon) routes() (http.Handler, error) {
	caller := tools.LocalCaller{Env: d.Env}
	api := httpapi.New(d.Env, d.log) // /api/<group>/<verb>, /api/events, /health
	api.Handle(mcp.Path, d.mcpHandler(caller))
	api.Handle(jsonrpc.Path, jsonrpc.Handler(caller, jsonrpc.Options{ReadOnly: d.Env.ReadOnly}))
	api.Handle(gateway.Path, gateway.New(d.Env.Inference, d.log))
	g, err := httpguard.New(httpguard.Options{
		AllowedHosts: d.Config.AllowedHosts, AllowedOrigins: d.Config.AllowedOrigins, Token: d.opts.Token, Logger: d.log,
	})
	if err != nil {
		return nil, err
	}
	return g.Wrap(api.Handler()), nil
}

// mcpHandler serves MCP over streamable HTTP, with the tools running in the
// daemon itself. Access (Host, Origin, token) is the guard's.
func (d *Daemon) mcpHandler(caller tools.Caller) http.Handler {
	s := mcp.NewServer(caller, mcp.Options{ReadOnly: d.Env.ReadOnly, Version: d.Env.Version})
	return mcp.Handler(s, mcp.HTTPOptions{Logger: d.log})
}
