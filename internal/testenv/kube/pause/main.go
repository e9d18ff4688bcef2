// Command pause is the sandbox ("pause") process of the real test node's
// Pods: no registry is reachable from the tests, so the usual
// registry.k8s.io/pause image cannot be pulled; this static program,
// packed into an OCI archive by internal/testenv/kube, is containerd's
// sandbox_image instead. It does what the usual one does: hold the Pod's
// namespaces, reap the zombies it inherits as PID 1, and exit on SIGINT or
// SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 8)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range c {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, _ := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 {
				break
			}
		}
	}
}
