// Command enginesim stands in for vLLM's OpenAI server image
// (vllm/vllm-openai) in aima's tests: same CLI, start-up log text and order,
// late port, endpoints, failure texts and exit codes (see
// /work/shared/reference/engines.md §1–3 and §7), with no GPU and no weights.
// It is a static binary in a FROM scratch image whose ENTRYPOINT is
// ["/enginesim", "serve"], so `docker run IMAGE --model /models/x` works
// exactly like `docker run vllm/vllm-openai --model /models/x`.
//
// Subcommands:
//
//	enginesim serve [vllm args] [--sim-* flags]   simulate `vllm serve` (default)
//	enginesim probe [--url URL] [--timeout 2s]     exit 0 if URL answers 200 (HEALTHCHECK)
//	enginesim version                              print the simulated vLLM version
//
// It imports no aima package on purpose: it plays the engine, not aima.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	// The binary is PID 1 in its container: without its own handler the
	// kernel ignores SIGTERM and docker stop would wait 10 s, then SIGKILL.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches subcommands. Anything that is not a subcommand (flags, or
// a model as first word) means serve, so `enginesim /models/x --port 9000`
// behaves like `vllm serve /models/x --port 9000`.
func run(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "serve", "probe", "version", "help":
			cmd, args = args[0], args[1:]
		}
	}
	switch cmd {
	case "probe":
		return runProbe(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, vllmVersion)
		return 0
	case "help":
		fmt.Fprint(stdout, usageText)
		return 0
	}
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-v") {
		fmt.Fprintln(stdout, vllmVersion)
		return 0
	}
	return runServe(ctx, args, getenv, stdout, stderr)
}

const usageText = `usage: enginesim [serve] [MODEL] [--model MODEL] [vllm flags] [--sim-* flags]
       enginesim probe [--url http://127.0.0.1:8000/health] [--timeout 2s]
       enginesim version

Simulator flags (env var in brackets; the flag wins):
  --sim-fail MODE          [SIM_FAIL] none, model-missing, oom-load, kv-none, hang, crash-after,
                           wedge-after, exit, no-gpu, port-in-use
  --sim-startup DUR        [SIM_STARTUP] total start-up, default 20s, split over phases
                           platform,config,engine_spawn,load,compile,profile,kv,graphs,post
  --sim-phase N=DUR,...    [SIM_PHASE] override single phases (before scaling)
  --sim-fail-after DUR     [SIM_FAIL_AFTER] crash-after/wedge-after delay after ready, default 30s
  --sim-time-scale F       [SIM_TIME_SCALE] multiply every duration, default 1.0
  --sim-exit-code N        [SIM_EXIT_CODE] override the failure's exit code
  --sim-model-check on|off [SIM_MODEL_CHECK] require a real model dir/.gguf/HF-cache entry, default on
  --sim-hf-cache DIR       [SIM_HF_CACHE] HF hub cache for org/name ids
  --sim-model-size SIZE    [SIM_MODEL_SIZE] weight size, e.g. 16GiB (default from files/config)
  --sim-gpu-mem SIZE       [SIM_GPU_MEM] simulated GPU memory, default 80GiB
`

// runServe parses vLLM's arguments and runs the simulated server.
func runServe(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	o, err := parseServe(args, getenv)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usageText)
		return 0
	}
	var ae *argError
	if errors.As(err, &ae) {
		fmt.Fprintf(stderr, "%s\n%s\n", ae.usage(), ae.Error())
		return 2
	}
	return newSim(o, getenv, stdout, stderr, os.Getpid()).run(ctx)
}

// runProbe is a health check usable from a FROM scratch image (no curl):
// exit 0 on HTTP 200, 1 otherwise (Docker reserves 2).
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8000/health", "URL to GET")
	timeout := fs.Duration("timeout", 2*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stdout, "probe: %v\n", err)
		return 1
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stdout, "probe %s: %v\n", *url, err)
		return 1
	}
	_ = resp.Body.Close()
	fmt.Fprintf(stdout, "probe %s: %s\n", *url, resp.Status)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
