// Command enginesim stands in for the engine images aima runs in its tests:
// vLLM's OpenAI server (vllm/vllm-openai), SGLang (lmsysorg/sglang) and
// llama.cpp's llama-server, with each one's CLI, start-up log text and order,
// port behaviour, endpoints, metrics, failure texts and exit codes (see
// /work/shared/reference/engines.md §1–4 and §7), with no GPU and no weights.
// It is a static binary in a FROM scratch image whose ENTRYPOINT is
// ["/enginesim", "serve"], so `docker run IMAGE --model /models/x` works
// exactly like `docker run vllm/vllm-openai --model /models/x`, `docker run
// IMAGE python3 -m sglang.launch_server --model-path /models/x` like SGLang's
// image and `docker run IMAGE -m /models/x.gguf` like llama.cpp's
// (personality.go says how it tells them apart).
//
// Subcommands:
//
//	enginesim serve [engine args] [--sim-* flags] simulate the engine (default)
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
	code := runAs(ctx, os.Args[0], os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is runAs for the binary under its own name.
func run(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	return runAs(ctx, "enginesim", args, getenv, stdout, stderr)
}

// runAs dispatches subcommands. Anything that is not a subcommand (flags, or
// a model as first word) means serve, so `enginesim /models/x --port 9000`
// behaves like `vllm serve /models/x --port 9000`. argv0 is the name the
// binary was started as (llama-server picks that personality).
func runAs(ctx context.Context, argv0 string, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
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
	return runServe(ctx, argv0, args, getenv, stdout, stderr)
}

const usageText = `usage: enginesim [serve] [MODEL] [--model MODEL] [vllm flags] [--sim-* flags]            (vLLM)
       enginesim [serve] python3 -m sglang.launch_server --model-path M [sglang flags]   (SGLang)
       enginesim [serve] -m M.gguf [llama-server flags]                                 (llama-server)
       enginesim probe [--url http://127.0.0.1:8000/health] [--timeout 2s]
       enginesim version

Simulator flags (env var in brackets; the flag wins):
  --sim-fail MODE          [SIM_FAIL] none, model-missing, oom-load, kv-none, hang, crash-after,
                           wedge-after, exit, no-gpu, port-in-use, bad-magic, unknown-arch,
                           kv-max-len, free-mem (these and oom-load, kv-none also follow on
                           their own from the flags, --sim-model-size, --sim-gpu-mem, --sim-gpu-free)
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
  --sim-gpu-free SIZE      [SIM_GPU_FREE] memory free at start (another process holds the rest), default all
  --sim-host-mem SIZE      [SIM_HOST_MEM] host memory allocated and held from the start (weights staged in
                           host RAM), e.g. 512MiB: over a container memory limit, the kernel OOM-kills it
`

// runServe picks the personality from the command line, parses the
// engine's arguments and runs the simulated server.
func runServe(ctx context.Context, argv0 string, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	engine, rest := choosePersonality(argv0, args)
	var o *options
	var err error
	if engine == engineVLLM {
		o, err = parseServe(rest, getenv)
	} else {
		o, err = parseEngineArgs(engine, rest, getenv)
	}
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usageText)
		return 0
	}
	var ae *argError
	if errors.As(err, &ae) {
		if u := ae.usage(); u != "" {
			fmt.Fprintln(stderr, u)
		}
		fmt.Fprintln(stderr, ae.Error())
		return ae.exitCode()
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
