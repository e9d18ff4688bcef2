// Package cli is aima's command line. `aima start` runs the daemon; every
// other command is a thin client of it over HTTP, generated from the same
// operation registry the MCP and JSON-RPC front-ends serve, so flags, help
// and behaviour cannot drift between them.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	ucli "github.com/urfave/cli/v3"

	"aima/daemon"
	"aima/errs"
	"aima/httpguard"
	"aima/tools"
)

// DefaultAddr is where the daemon listens and the CLI looks for it.
const DefaultAddr = "127.0.0.1:9090"

// IO bundles the streams the CLI writes to (tests pass buffers).
type IO struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
}

// Run executes the CLI and returns the process exit code.
func Run(ctx context.Context, args []string, std IO) int {
	root := NewRoot(std)
	err := root.Run(ctx, args)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return reportError(std, outputFormat(root), err)
}

// exitError carries an exit code decided by a command that already
// reported its failure.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// ExitCode maps an error kind to the CLI's exit code (the reference's
// table, docs/reference/errors.md, is written from it by `make docs`).
func ExitCode(k errs.Kind) int {
	switch k {
	case errs.InvalidArgument:
		return 2
	case errs.NotFound:
		return 3
	case errs.Conflict:
		return 4
	case errs.Unavailable:
		return 5
	case errs.DeadlineExceeded:
		return 6
	case errs.Canceled:
		return 130
	case errs.Unauthenticated, errs.PermissionDenied:
		return 7
	}
	return 1
}

// reportError prints err (one line on stderr; in json/yaml mode also the
// error document on stdout) and returns the exit code.
func reportError(std IO, format string, err error) int {
	kind := errs.KindOf(err)
	var ue usageError
	if errors.As(err, &ue) {
		kind = errs.InvalidArgument
	}
	fmt.Fprintf(std.Stderr, "error: %v\n", err)
	if format == "json" || format == "yaml" {
		doc := map[string]any{"error": map[string]any{"code": kind, "message": err.Error(), "field": errs.FieldOf(err)}}
		_ = printDoc(std.Stdout, format, doc)
	}
	return ExitCode(kind)
}

type usageError struct{ error }

func outputFormat(root *ucli.Command) string {
	if root == nil {
		return "table"
	}
	return root.String("output")
}

// NewRoot builds the command tree.
func NewRoot(std IO) *ucli.Command {
	root := &ucli.Command{
		Name:  "aima",
		Usage: "run AI inference engines as containers (Docker or Kubernetes), observable and controllable by people, scripts and agents",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "addr", Value: DefaultAddr, Usage: "daemon address (host:port)", Sources: ucli.EnvVars("AIMA_ADDR")},
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "output format: table, json or yaml", Sources: ucli.EnvVars("AIMA_OUTPUT"),
				Validator: func(s string) error {
					switch s {
					case "table", "json", "yaml":
						return nil
					}
					return usageError{fmt.Errorf("--output %q: want table, json or yaml", s)}
				}},
		},
		Writer:                std.Stdout,
		ErrWriter:             std.Stderr,
		Reader:                std.Stdin,
		Version:               daemon.Version,
		EnableShellCompletion: true,
		ExitErrHandler:        func(context.Context, *ucli.Command, error) {},
		OnUsageError: func(_ context.Context, _ *ucli.Command, err error, _ bool) error {
			return usageError{err}
		},
	}
	// The whole command list, in help order: the daemon, one command per
	// operation of the registry, then the shortcut, the stdio servers and
	// the offline store tools.
	root.Commands = append([]*ucli.Command{startCommand(std)}, opCommands(std)...)
	root.Commands = append(root.Commands, doctorCommand(std), chatCommand(std), mcpCommand(std), rpcCommand(std), storeCommand(std))
	usageErrorsExit2(root)
	return root
}

// usageErrorsExit2 makes a flag that does not parse (--tail abc) or does
// not exist a usage error (invalid_argument, exit code 2) on every command:
// urfave/cli consults only the command being run, not its parents.
func usageErrorsExit2(cmd *ucli.Command) {
	for _, c := range cmd.Commands {
		if c.OnUsageError == nil {
			c.OnUsageError = cmd.OnUsageError
		}
		usageErrorsExit2(c)
	}
}

func startCommand(std IO) *ucli.Command {
	return &ucli.Command{
		Name:  "start",
		Usage: "run the aima daemon (HTTP API, MCP at /mcp, JSON-RPC at /rpc) until interrupted",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "data-dir", Usage: "state directory (default ~/.aima)", Sources: ucli.EnvVars("AIMA_DATA_DIR")},
			&ucli.StringFlag{Name: "config", Usage: "YAML config file", Sources: ucli.EnvVars("AIMA_CONFIG")},
			&ucli.BoolFlag{Name: "read-only", Usage: "serve only read-only operations", Sources: ucli.EnvVars("AIMA_READ_ONLY")},
		},
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			token, err := httpguard.TokenFromEnv(os.Getenv)
			if err != nil {
				return err
			}
			opts := daemon.Options{
				Addr: cmd.String("addr"), DataDir: cmd.String("data-dir"), ConfigPath: cmd.String("config"),
				ReadOnly: cmd.Bool("read-only"),
				Token:    token,
			}
			return daemon.Run(ctx, opts)
		},
	}
}

// doctorCommand is `aima doctor`, a short name for `aima system doctor`.
func doctorCommand(std IO) *ucli.Command {
	op, _ := tools.Lookup("system_doctor")
	cmd := opCommand(op, std)
	cmd.Name = "doctor"
	return cmd
}
