package cli

import (
	"context"
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v3"

	"aima/client"
	"aima/events"
	"aima/tools"
)

// chatCommand is `aima chat MODEL "prompt"`, the short form of `aima
// inference chat`: on a terminal the answer streams as it is generated;
// otherwise (a pipe, -o json) the whole answer is printed at the end.
func chatCommand(std IO) *ucli.Command {
	op, _ := tools.Lookup("inference_chat")
	return &ucli.Command{
		Name:        "chat",
		Usage:       "chat with a model through aima's gateway (starts or wakes an on-demand service)",
		ArgsUsage:   "MODEL PROMPT",
		Description: op.Description(),
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "system", Usage: "system message"},
			&ucli.IntFlag{Name: "max-tokens", Usage: "cap on generated tokens"},
			&ucli.FloatFlag{Name: "temperature", Usage: "sampling temperature (0: deterministic)"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			args := c.Args().Slice()
			if len(args) != 2 {
				return usageError{fmt.Errorf("want MODEL and PROMPT, e.g. aima chat qwen \"Hello\" (got %d arguments)", len(args))}
			}
			in := map[string]any{"model": args[0], "prompt": args[1]}
			if c.IsSet("system") {
				in["system"] = c.String("system")
			}
			if c.IsSet("max-tokens") {
				in["max_tokens"] = c.Int("max-tokens")
			}
			if c.IsSet("temperature") {
				in["temperature"] = c.Float("temperature")
			}
			format := c.Root().String("output")
			live := format == "table" && isTerminal(std.Stdout)
			cl := client.New(c.Root().String("addr"))
			cl.Frontend = tools.FrontendCLI
			streamed := false
			stream := &client.Stream{
				OnEvent: func(ev events.Event) { fmt.Fprintf(std.Stderr, "... %s\n", ev.Message) },
				OnDelta: func(d tools.ChatDelta) {
					if live {
						streamed = true
						fmt.Fprint(std.Stdout, d.Text)
					}
				},
			}
			raw, err := cl.Call(ctx, op.Name(), in, stream)
			if err != nil {
				return err
			}
			if streamed {
				fmt.Fprintln(std.Stdout)
				return nil
			}
			if err := render(std, format, op, raw); err != nil {
				return err
			}
			return nil
		},
	}
}

// isTerminal reports whether w is a character device (a TTY).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
