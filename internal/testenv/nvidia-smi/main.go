// Command nvidia-smi is the fake nvidia-smi of aima's tests (see package
// fakesmi): it answers the queries aima makes from the Spec file named by
// $AIMA_FAKE_NVIDIA_SMI, and can hang or fail like a broken driver.
package main

import (
	"fmt"
	"os"

	"aima/internal/testenv/fakesmi"
)

func main() {
	spec, err := fakesmi.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake nvidia-smi:", err)
		os.Exit(2)
	}
	os.Exit(fakesmi.Run(spec, os.Args[1:], os.Stdout))
}
