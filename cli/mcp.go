package cli

import (
	"context"
	"log/slog"
	"os"

	ucli "github.com/urfave/cli/v3"

	"aima/client"
	"aima/daemon"
	"aima/httpapi"
	"aima/mcp"
	"aima/tools"
)

// tokenEnv names the bearer token of the daemon's /mcp endpoint. It is
// required when the daemon listens beyond loopback; `aima mcp` sends it too.
const tokenEnv = "AIMA_TOKEN"

func init() {
	extraCommands = append(extraCommands, mcpCommand)
	mounts = append(mounts, mountMCP)
}

// mountMCP serves MCP (streamable HTTP) at /mcp of the daemon, running tools
// in the daemon itself.
func mountMCP(srv *httpapi.Server, env *tools.Env, addr, token string) {
	if err := mcp.CheckExposure(addr, token); err != nil {
		slog.Warn("MCP over HTTP disabled", "err", err)
		srv.Handle(mcp.Path, mcp.Disabled(err))
		return
	}
	s := mcp.NewServer(tools.LocalCaller{Env: env}, mcp.Options{ReadOnly: env.ReadOnly, Version: env.Version})
	srv.Handle(mcp.Path, mcp.Handler(s, mcp.HTTPOptions{Token: token}))
}

// mcpCommand is `aima mcp`: an MCP server on stdio for clients that launch
// their servers as subprocesses. Tools run in the daemon at --addr, through
// its HTTP API, so there is still one daemon owning every start.
func mcpCommand(std IO) *ucli.Command {
	return &ucli.Command{
		Name:  "mcp",
		Usage: "serve aima's tools to an MCP client over stdio (the tools run in the daemon at --addr)",
		Description: "Add to an MCP client as {\"command\": \"aima\", \"args\": [\"mcp\"]}, with AIMA_ADDR set when the " +
			"daemon is not at " + DefaultAddr + ". Stdout carries only the protocol; diagnostics go to stderr.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "read-only", Usage: "offer only read-only tools", Sources: ucli.EnvVars("AIMA_READ_ONLY")},
		},
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			c := client.New(cmd.Root().String("addr"))
			c.Token = os.Getenv(tokenEnv)
			s := mcp.NewServer(client.Caller{Client: c}, mcp.Options{ReadOnly: cmd.Bool("read-only"), Version: daemon.Version})
			return mcp.ServeStdio(ctx, s, std.Stdin, std.Stdout, std.Stderr)
		},
	}
}
