package cli_test

import (
	"io"
	"testing"

	ucli "github.com/urfave/cli/v3"

	"aima/cli"
)

// TestEveryCommandHasAHelpLine walks the whole command tree: `aima --help`
// and `aima <group> --help` list each command with its one-line usage, so
// a command without one (a new operation group) reads as a blank line.
func TestEveryCommandHasAHelpLine(t *testing.T) {
	t.Parallel()
	root := cli.NewRoot(cli.IO{Stdout: io.Discard, Stderr: io.Discard})
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			if c.Usage == "" {
				t.Errorf("%s %s has no help line (Usage)", path, c.Name)
			}
			walk(path+" "+c.Name, c.Commands)
		}
	}
	walk("aima", root.Commands)
}
