package daemon

import (
	"net/http"

	"aima/httpapi"
	"aima/jsonrpc"
	"aima/mcp"
	"aima/tools"
)

// routes mounts every front-end on the daemon's one HTTP server and wraps
// it in the checks that apply to all of them. A new front-end (a web UI at
// /ui/, Prometheus metrics at /metrics, an OpenAI-compatible gateway at
// /v1) is one more api.Handle line here; it then sits behind the same
// checks.
func (d *Daemon) routes() http.Handler {
	caller := tools.LocalCaller{Env: d.Env}
	api := httpapi.New(d.Env, d.log) // /api/<group>/<verb>, /api/events, /health
	api.Handle(mcp.Path, d.mcpHandler(caller))
	api.Handle(jsonrpc.Path, jsonrpc.Handler(caller, jsonrpc.Options{ReadOnly: d.Env.ReadOnly}))
	h := api.Handler()
	if d.opts.Token != "" {
		h = httpapi.RequireToken(d.opts.Token, h)
	}
	return h
}

// mcpHandler serves MCP over streamable HTTP, with the tools running in the
// daemon itself; beyond loopback without a token it explains why it is off.
func (d *Daemon) mcpHandler(caller tools.Caller) http.Handler {
	if err := mcp.CheckExposure(d.opts.Addr, d.opts.Token); err != nil {
		d.log.Warn("MCP over HTTP disabled", "err", err)
		return mcp.Disabled(err)
	}
	s := mcp.NewServer(caller, mcp.Options{ReadOnly: d.Env.ReadOnly, Version: d.Env.Version})
	return mcp.Handler(s, mcp.HTTPOptions{Token: d.opts.Token, Logger: d.log})
}
