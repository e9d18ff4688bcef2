// Command aima-docs writes the reference tables of docs/reference/*.md from
// the code: the CLI commands (the command tree), the tools (the operation
// registry, as MCP serves them), the JSON-RPC methods, the error kinds (each
// front-end's own mapping), the failure kinds, the config keys (the config
// struct, its defaults and doc comments) and the metrics (the collectors'
// descriptors). Each table sits between two markers in its page,
//
//	<!-- BEGIN GENERATED: tools -->
//	...
//	<!-- END GENERATED: tools -->
//
// and everything outside the markers is written by hand. `make docs` runs
// it; its test fails when a committed page differs from what the code
// gives, so the reference cannot drift from the code.
//
// Usage: aima-docs [-check] [-root DIR]
package main

import (
	"flag"
	"fmt"
	"os"

	"aima/internal/modroot"
)

func main() {
	check := flag.Bool("check", false, "report pages whose generated sections differ from the code, change nothing")
	root := flag.String("root", "", "the module root (default: found from the working directory)")
	flag.Parse()
	dir := *root
	if dir == "" {
		var err error
		if dir, err = modroot.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "aima-docs:", err)
			os.Exit(1)
		}
	}
	stale, err := generate(dir, !*check)
	if err != nil {
		fmt.Fprintln(os.Stderr, "aima-docs:", err)
		os.Exit(1)
	}
	for _, s := range stale {
		if *check {
			fmt.Printf("%s: section %q differs from the code: run `make docs`\n", s.file, s.name)
		} else {
			fmt.Printf("wrote %s (%s)\n", s.file, s.name)
		}
	}
	if *check && len(stale) > 0 {
		os.Exit(1)
	}
}
