// Package testenv holds the shared helpers for aima's integration tests: a
// reachable Docker engine (or a clear failure), images built from this
// repository (the engine simulator, a tiny test program, a hostile engine), a loopback OCI
// registry to pull from, the aima binary, free ports and cleanup of
// containers by label; and the pieces of the end-to-end harnesses: a daemon
// config with the simulator as vllm (SimConfig), a model directory
// (MakeModel), and an `aima start` subprocess with a CLI runner
// (StartDaemon; NewDaemon and StartRefused for a start that must fail). An
// in-process daemon is in the subpackage daemontest; FIFOs and devices
// named like model files are in specialfiles.
//
// Tests that need Docker fail, not skip, when it is missing: CI must not go
// green by running nothing. Only `go test -short` skips them.
//
// testenv does not import runtime/docker (nor aima/daemon, which imports
// it), so runtime/docker's own tests can use it; it talks to the engine
// through the moby client directly.
//
// Concurrency: images and binaries are built at most once per test process
// (and rebuilt only when the source changed); concurrent test processes from
// `go test ./...` may build the same image at once, which is harmless because
// the results are identical and tagging is atomic in the engine.
package testenv
