package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"aima/client"
	"aima/errs"
	"aima/jsonrpc"
	"aima/tools"
)

// rpcCommand is `aima rpc`: JSON-RPC on stdio, running operations through
// the daemon so that one daemon still owns every start (the daemon serves
// the same protocol at POST /rpc).
func rpcCommand(std IO) *ucli.Command {
	return &ucli.Command{
		Name:  "rpc",
		Usage: "serve JSON-RPC 2.0 on stdin/stdout (one JSON message per line), running operations through the daemon",
		Description: "Reads JSON-RPC 2.0 requests (or batches) from stdin, one per line, and writes responses and\n" +
			"notifications to stdout, one per line; stdout carries nothing else (errors go to stderr).\n" +
			"Methods are the operations in dotted form: " + strings.Join(jsonrpc.Methods(false), ", ") + ".\n" +
			"Params are the operation's input as an object; the result is its output. While a call runs,\n" +
			"progress arrives as service.progress notifications and log lines as service.log, both with\n" +
			"the request id. The same protocol is served over HTTP at POST /rpc on the daemon.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "read-only", Usage: "serve only read-only methods"},
		},
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			if std.Stdin == nil {
				return errs.New(errs.InvalidArgument, "aima rpc needs a stdin")
			}
			c := client.New(cmd.Root().String("addr"))
			c.Frontend = tools.FrontendJSONRPC
			caller := client.Caller{Client: c}
			err := jsonrpc.Serve(ctx, std.Stdin, std.Stdout, caller, jsonrpc.Options{ReadOnly: cmd.Bool("read-only")})
			if err == nil {
				return nil
			}
			// Report here rather than through Run: in json/yaml mode Run
			// would print an error document on stdout, which is protocol-only.
			fmt.Fprintf(std.Stderr, "error: %v\n", err)
			if errors.Is(err, context.Canceled) {
				return exitError{code: ExitCode(errs.Canceled)}
			}
			return exitError{code: ExitCode(errs.KindOf(err))}
		},
	}
}
