package cli

import (
	"context"
	"log/slog"
	"os"
	"strings"

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
// in the daemon itself. Without AIMA_TOKEN on an address beyond loopback it
// mounts a handler that explains the refusal instead.
func mountMCP(srv *httpapi.Server, env *tools.Env) {
	token := os.Getenv(tokenEnv)
	addr := listenAddr(os.Args)
	if err := mcp.CheckExposure(addr, token); err != nil {
		slog.Warn("MCP over HTTP disabled", "err", err)
		srv.Handle(mcp.Path, mcp.Disabled(err))
		return
	}
	s := mcp.NewServer(tools.LocalCaller{Env: env}, mcp.Options{ReadOnly: env.ReadOnly, Version: env.Version})
	srv.Handle(mcp.Path, mcp.Handler(s, mcp.HTTPOptions{Token: token}))
}

// listenAddr finds the daemon's listen address the way the root --addr flag
// gets it (flag, then AIMA_ADDR, then the default). Mount functions do not
// receive the address, so it is read from the command line.
func listenAddr(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, name := range []string{"--addr", "-addr"} {
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	if v := os.Getenv("AIMA_ADDR"); v != "" {
		return v
	}
	return DefaultAddr
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
