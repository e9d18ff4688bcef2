package tools

// The front-ends every operation is served by, as the daemon's metrics
// count calls (the frontend label of aima_operations_total).
const (
	FrontendHTTP    = "http"    // the HTTP API (scripts, curl, web pages)
	FrontendCLI     = "cli"     // the aima CLI, through the HTTP API
	FrontendMCP     = "mcp"     // MCP: /mcp, or aima mcp on stdio relaying through the HTTP API
	FrontendJSONRPC = "jsonrpc" // JSON-RPC: /rpc, or aima rpc on stdio relaying through the HTTP API
)

// Frontends lists the front-ends.
var Frontends = []string{FrontendHTTP, FrontendCLI, FrontendMCP, FrontendJSONRPC}

// FrontendHeader is the request header in which aima's own relaying clients
// (the CLI, aima mcp, aima rpc) name the front-end a call came through, so
// the daemon counts a relayed call by where it came from rather than as a
// plain HTTP API call.
const FrontendHeader = "Aima-Frontend"
