// Command aima runs AI inference engines as containers (Docker or Kubernetes). `aima start`
// runs the daemon; every other command talks to it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"aima/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args, cli.IO{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin})
	stop()
	os.Exit(code)
}
