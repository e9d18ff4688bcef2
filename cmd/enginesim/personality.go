package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// The simulator plays three engines, chosen the way their images are run:
//
//	vLLM          ENTRYPOINT ["vllm", "serve"]: `--model M ...` or `M ...`
//	SGLang        `python3 -m sglang.launch_server --model-path M ...`, or `sglang serve --model-path M ...`
//	llama-server  ENTRYPOINT ["/app/llama-server"]: `-m M.gguf ...`
//
// The simulator image's ENTRYPOINT is ["/enginesim", "serve"], so each
// engine's own command line, appended by `docker run IMAGE ...`, selects its
// personality. What differs between the personalities is data: a flag table
// (this file; vLLM's argparse-like parser is flags.go), a start-up script of
// log lines and a failure table (vllm.go, sglang.go, llamacpp.go), a route
// table (native.go) and metric names (metrics.go).
const (
	engineVLLM     = "vllm"
	engineSGLang   = "sglang"
	engineLlamaCpp = "llamacpp"
)

// llamaOnlyFlags are llama-server flags vLLM does not have: any of them on a
// bare command line means the llama.cpp image (whose entrypoint takes flags
// only). `--model` alone stays vLLM's.
var llamaOnlyFlags = map[string]bool{
	"-m": true, "--alias": true, "-a": true, "-ngl": true, "--n-gpu-layers": true, "--gpu-layers": true,
	"-c": true, "--ctx-size": true, "-np": true, "--parallel": true, "--metrics": true, "--embeddings": true,
	"--embedding": true, "-hf": true, "--hf-repo": true,
}

// choosePersonality reads which engine the command line runs, and returns
// the engine's own arguments (the launcher words removed).
func choosePersonality(argv0 string, args []string) (engine string, rest []string) {
	switch filepath.Base(argv0) {
	case "llama-server":
		return engineLlamaCpp, args
	case "sglang":
		if len(args) > 0 && args[0] == "serve" {
			return engineSGLang, args[1:]
		}
	}
	switch {
	case len(args) >= 3 && strings.HasPrefix(filepath.Base(args[0]), "python") && args[1] == "-m" && args[2] == "sglang.launch_server":
		return engineSGLang, args[3:]
	case len(args) >= 2 && filepath.Base(args[0]) == "sglang" && args[1] == "serve":
		return engineSGLang, args[2:]
	case len(args) >= 2 && filepath.Base(args[0]) == "vllm" && args[1] == "serve":
		return engineVLLM, args[2:]
	case len(args) >= 1 && filepath.Base(args[0]) == "llama-server":
		return engineLlamaCpp, args[1:]
	}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if llamaOnlyFlags[name] {
			return engineLlamaCpp, args
		}
		if name == "--model-path" {
			return engineSGLang, args
		}
	}
	return engineVLLM, args
}

// argSpec is one flag of the SGLang or llama-server command line.
type argSpec struct {
	names  []string // every spelling, e.g. "-ngl", "--n-gpu-layers", "--gpu-layers"
	isBool bool
	set    func(o *options, v string) error
}

// sglangArgs are the SGLang flags the simulator interprets
// (sglang/srt/server_args.py); others are accepted and ignored.
var sglangArgs = []argSpec{
	{[]string{"--model-path", "--model"}, false, func(o *options, v string) error { o.Model = v; return nil }},
	{[]string{"--served-model-name"}, false, func(o *options, v string) error { o.ServedNames = []string{v}; return nil }},
	{[]string{"--host"}, false, func(o *options, v string) error { o.Host = v; return nil }},
	{[]string{"--port"}, false, intSetter(func(o *options, n int) { o.Port = n })},
	{[]string{"--tp-size", "--tp", "--tensor-parallel-size"}, false, intSetter(func(o *options, n int) { o.TP = n })},
	{[]string{"--mem-fraction-static"}, false, floatSetter(func(o *options, f float64) { o.GPUMemUtil = f })},
	{[]string{"--context-length"}, false, intSetter(func(o *options, n int) { o.MaxModelLen = n })},
	{[]string{"--max-running-requests"}, false, intSetter(func(o *options, n int) { o.MaxNumSeqs = n })},
	{[]string{"--api-key"}, false, func(o *options, v string) error { o.APIKey = v; return nil }},
	{[]string{"--enable-metrics"}, true, func(o *options, _ string) error { o.Metrics = true; return nil }},
	{[]string{"--enable-memory-saver"}, true, func(o *options, _ string) error { o.EnableSleepMode = true; return nil }},
	{[]string{"--disable-cuda-graph"}, true, func(o *options, _ string) error { o.EnforceEager = true; return nil }},
	{[]string{"--trust-remote-code", "--skip-server-warmup", "--enable-torch-compile", "--log-requests", "--is-embedding"}, true,
		func(*options, string) error { return nil }},
}

// llamaArgs are the llama-server flags the simulator interprets
// (common/arg.cpp); others are accepted and ignored.
var llamaArgs = []argSpec{
	{[]string{"-m", "--model"}, false, func(o *options, v string) error { o.Model = v; return nil }},
	{[]string{"-a", "--alias"}, false, func(o *options, v string) error { o.ServedNames = []string{v}; return nil }},
	{[]string{"--host"}, false, func(o *options, v string) error { o.Host = v; return nil }},
	{[]string{"--port"}, false, intSetter(func(o *options, n int) { o.Port = n })},
	{[]string{"-ngl", "--n-gpu-layers", "--gpu-layers"}, false, func(o *options, v string) error {
		if v == "auto" || v == "all" {
			o.NGL = -1
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("invalid value for %s: '%s'", "-ngl", v)
		}
		o.NGL = n
		return nil
	}},
	{[]string{"-c", "--ctx-size"}, false, intSetter(func(o *options, n int) { o.MaxModelLen = n })},
	{[]string{"-np", "--parallel"}, false, intSetter(func(o *options, n int) { o.MaxNumSeqs = n })},
	{[]string{"--api-key"}, false, func(o *options, v string) error { o.APIKey = v; return nil }},
	{[]string{"--metrics"}, true, func(o *options, _ string) error { o.Metrics = true; return nil }},
	{[]string{"--embedding", "--embeddings"}, true, func(o *options, _ string) error { o.Embeddings = true; return nil }},
	{[]string{"--no-mmap", "--mlock", "-fa", "--flash-attn", "--jinja", "--no-webui", "--cont-batching", "-cb", "--verbose", "-v"}, true,
		func(*options, string) error { return nil }},
}

func floatSetter(f func(*options, float64)) func(*options, string) error {
	return func(o *options, v string) error {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("invalid float value: '%s'", v)
		}
		f(o, x)
		return nil
	}
}

// engineDefaults are SGLang's and llama-server's own defaults (host
// 127.0.0.1 for both; ports 30000 and 8080).
func engineDefaults(engine string) *options {
	o := defaultOptions()
	o.Engine, o.Host, o.Model = engine, "127.0.0.1", ""
	switch engine {
	case engineSGLang:
		o.Port, o.GPUMemUtil, o.MaxNumSeqs = 30000, 0.88, 4096
	case engineLlamaCpp:
		// llama-server's defaults: -c 4096, one slot, every layer on the
		// GPU (-ngl auto), and the model path it falls back to without -m.
		o.Port, o.GPUMemUtil, o.MaxModelLen, o.MaxNumSeqs, o.NGL = 8080, 1, 4096, 1, -1
		o.Model = "models/7B/ggml-model-f16.gguf"
	}
	return o
}

// parseEngineArgs parses an SGLang or llama-server command line with the
// engine's table; the simulator's own --sim-* flags work as with vLLM, and
// SIM_* variables fill the ones not given. A bad value or a missing
// required flag is the engine's usage error (SGLang's argparse: exit 2;
// llama-server: exit 1).
func parseEngineArgs(engine string, args []string, getenv func(string) (string, bool)) (*options, error) {
	o := engineDefaults(engine)
	table := sglangArgs
	if engine == engineLlamaCpp {
		table = llamaArgs
	}
	usageErr := func(format string, a ...any) error {
		msg := fmt.Sprintf(format, a...)
		if engine == engineSGLang {
			return &argError{"launch_server.py", msg}
		}
		return &argError{"llama-server", msg}
	}
	seen := map[string]bool{}
	modelGiven := false
	isFlag := func(s string) bool { return strings.HasPrefix(s, "-") && !isNumber(s) }
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" {
			return nil, errHelp
		}
		if !isFlag(a) {
			if engine == engineSGLang {
				return nil, usageErr("unrecognized arguments: %s", a)
			}
			return nil, usageErr("invalid argument: %s", a)
		}
		name, inline, hasInline := strings.Cut(a, "=")
		if sim, ok := strings.CutPrefix(name, "--sim-"); ok {
			spec, known := knownFlags["sim-"+sim]
			if !known {
				return nil, usageErr("unrecognized arguments: %s", a)
			}
			v := inline
			if !hasInline {
				if i+1 >= len(args) {
					return nil, usageErr("argument %s: expected one argument", name)
				}
				i++
				v = args[i]
			}
			if err := spec.set(o, v); err != nil {
				return nil, usageErr("argument %s: %v", name, err)
			}
			seen["sim-"+sim] = true
			continue
		}
		spec, known := findArg(table, name)
		switch {
		case !known && (hasInline || i+1 >= len(args) || isFlag(args[i+1])):
			continue // an engine flag the simulator ignores
		case !known:
			i++
			continue
		case spec.isBool:
			if err := spec.set(o, ""); err != nil {
				return nil, usageErr("argument %s: %v", name, err)
			}
			continue
		}
		v := inline
		if !hasInline {
			if i+1 >= len(args) {
				if engine == engineSGLang {
					return nil, usageErr("argument %s: expected one argument", name)
				}
				return nil, usageErr("expected value for argument: %s", name)
			}
			i++
			v = args[i]
		}
		if err := spec.set(o, v); err != nil {
			return nil, usageErr("argument %s: %v", name, err)
		}
		if spec.names[0] == "-m" || spec.names[0] == "--model-path" {
			modelGiven = true
		}
	}
	if engine == engineSGLang && !modelGiven {
		return nil, usageErr("the following arguments are required: --model-path")
	}
	for _, se := range simEnv {
		if seen[se.flag] {
			continue
		}
		if v, ok := getenv(se.env); ok && v != "" {
			if err := knownFlags[se.flag].set(o, v); err != nil {
				return nil, usageErr("environment variable %s: %v", se.env, err)
			}
		}
	}
	if o.TP < 1 {
		return nil, usageErr("argument --tp-size: must be >= 1")
	}
	return o, nil
}

func findArg(table []argSpec, name string) (argSpec, bool) {
	for _, s := range table {
		for _, n := range s.names {
			if n == name {
				return s, true
			}
		}
	}
	return argSpec{}, false
}
