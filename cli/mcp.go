package cli

import (
	"context"

	ucli "github.com/urfave/cli/v3"

	"aima/client"
	"aima/daemon"
	"aima/mcp"
	"aima/tools"
)

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
			c.Frontend = tools.FrontendMCP
			s := mcp.NewServer(client.Caller{Client: c}, mcp.Options{ReadOnly: cmd.Bool("read-only"), Version: daemon.Version, Context: ctx})
			return mcp.ServeStdio(ctx, s, std.Stdin, std.Stdout, std.Stderr)
		},
	}
}
