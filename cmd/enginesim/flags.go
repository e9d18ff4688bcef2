package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// options is the parsed command line of `serve`: the vLLM-compatible part a
// real `vllm serve` understands, plus the simulator's own --sim-* knobs. aima
// passes vLLM flags as container args and sim knobs as SIM_* env vars, so both
// must work without the other.
type options struct {
	// vLLM flags.
	Model            string
	ServedNames      []string
	Host             string // "" = vLLM's default None (all interfaces)
	Port             int
	TP, PP           int
	GPUMemUtil       float64
	MaxModelLen      int // 0 = derive from the model's config.json
	APIKey           string
	MaxNumSeqs       int
	MaxBatchedTokens int // 0 = vLLM's default for an 80 GiB GPU
	Dtype            string
	EnforceEager     bool
	DisableAccessLog bool
	DisableLogStats  bool
	EnableSleepMode  bool // --enable-sleep-mode (vLLM), --enable-memory-saver (SGLang)
	DevMode          bool // VLLM_SERVER_DEV_MODE=1: serves /sleep, /wake_up, /is_sleeping

	// Engine is the personality: engineVLLM, engineSGLang or engineLlamaCpp.
	Engine string
	// SGLang and llama-server flags without a vLLM counterpart.
	Metrics    bool // SGLang --enable-metrics, llama-server --metrics (vLLM always serves /metrics)
	Embeddings bool // llama-server --embeddings
	NGL        int  // llama-server -ngl: layers on the GPU, -1 = all
	// LegacyHealth: SGLang's older /health, 200 as soon as the server
	// listens, warm or not (SIM_LEGACY_HEALTH=1).
	LegacyHealth bool

	// nonDefault feeds the `non-default args: {...}` log line, already in
	// Python repr, in the order vLLM prints it.
	nonDefault []pyArg

	// Simulator knobs (flag wins over env).
	Fail          string
	Startup       time.Duration
	PhaseOverride map[string]time.Duration
	FailAfter     time.Duration
	TimeScale     float64
	ExitCode      int // -1 = the failure mode's own code
	ModelCheck    bool
	HFCache       string  // "" = $HF_HUB_CACHE, $HF_HOME/hub, /root/.cache/huggingface/hub
	ModelSizeGiB  float64 // 0 = derive from the weight files / config.json
	GPUMemGiB     float64
	// GPUFreeGiB is the memory free on the GPU when the engine starts (0 =
	// all of GPUMemGiB): less means another process holds the rest.
	GPUFreeGiB float64
	// HostMemGiB is host memory the engine allocates and touches as it
	// starts (weights staged in host RAM), so a container memory limit
	// below it gets the engine OOM-killed by the kernel.
	HostMemGiB float64
	TTFT       time.Duration // prefill time before the first token (default 0)
	ITL        time.Duration // time between generated tokens (default 0)
}

// pyArg is one entry of vLLM's non-default args dict.
type pyArg struct{ key, repr string }

// failModes lists the accepted --sim-fail values; "" and "none" mean no failure.
var failModes = []string{
	"model-missing", "oom-load", "kv-none", "hang", "crash-after", "wedge-after",
	"exit", "no-gpu", "port-in-use", "bad-magic", "unknown-arch", "kv-max-len", "free-mem",
}

// argError is an argparse-style usage error: it is printed as `<prog>: error:
// <msg>` after a usage line and makes the process exit 2, like vLLM.
type argError struct {
	prog string // "vllm" for unrecognized arguments, "vllm serve" for bad values
	msg  string
}

func (e *argError) Error() string {
	if e.prog == "llama-server" { // common_params_parse prints only "error: ..."
		return "error: " + e.msg
	}
	return e.prog + ": error: " + e.msg
}

// usage returns the argparse usage line that precedes the error ("" when
// the engine prints none).
func (e *argError) usage() string {
	switch e.prog {
	case "vllm":
		return "usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ..."
	case "launch_server.py":
		return "usage: launch_server.py [-h] --model-path MODEL_PATH [--tokenizer-path TOKENIZER_PATH] [--host HOST] [--port PORT] ..."
	case "llama-server":
		return ""
	}
	return "usage: vllm serve [model_tag] [options]"
}

// exitCode is the engine's exit status for a usage error: argparse exits
// 2, llama-server 1.
func (e *argError) exitCode() int {
	if e.prog == "llama-server" {
		return 1
	}
	return 2
}

// flagKind says how many values a known flag consumes.
type flagKind int

const (
	kindValue flagKind = iota // exactly one value
	kindBool                  // no value
	kindList                  // one or more values (argparse nargs="+")
)

// flagSpec describes a flag the simulator interprets; every other --flag is a
// vLLM flag it accepts and ignores.
type flagSpec struct {
	kind flagKind
	py   string // key in the non-default args dict; "" = not printed (sim flags)
	set  func(o *options, v string) error
}

// knownFlags maps a long flag name (dashes, no leading "--") to its spec. The
// table order of pyOrder below, not this map, decides the log order.
var knownFlags = map[string]flagSpec{
	"model": {kindValue, "model", func(o *options, v string) error { o.Model = v; return nil }},
	"served-model-name": {kindList, "served_model_name", func(o *options, v string) error {
		o.ServedNames = append(o.ServedNames, v)
		return nil
	}},
	"host":                   {kindValue, "host", func(o *options, v string) error { o.Host = v; return nil }},
	"port":                   {kindValue, "port", intSetter(func(o *options, n int) { o.Port = n })},
	"api-key":                {kindValue, "api_key", func(o *options, v string) error { o.APIKey = v; return nil }},
	"tensor-parallel-size":   {kindValue, "tensor_parallel_size", intSetter(func(o *options, n int) { o.TP = n })},
	"pipeline-parallel-size": {kindValue, "pipeline_parallel_size", intSetter(func(o *options, n int) { o.PP = n })},
	"gpu-memory-utilization": {kindValue, "gpu_memory_utilization", func(o *options, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("invalid float value: '%s'", v)
		}
		o.GPUMemUtil = f
		return nil
	}},
	"max-model-len": {kindValue, "max_model_len", func(o *options, v string) error {
		n, err := parseHumanInt(v)
		if err != nil {
			return fmt.Errorf("invalid human_readable_int value: '%s'", v)
		}
		o.MaxModelLen = n
		return nil
	}},
	"max-num-seqs":           {kindValue, "max_num_seqs", intSetter(func(o *options, n int) { o.MaxNumSeqs = n })},
	"max-num-batched-tokens": {kindValue, "max_num_batched_tokens", intSetter(func(o *options, n int) { o.MaxBatchedTokens = n })},
	"dtype": {kindValue, "dtype", func(o *options, v string) error {
		switch v {
		case "auto", "half", "float16", "bfloat16", "float", "float32":
			o.Dtype = v
			return nil
		}
		return fmt.Errorf("invalid choice: '%s' (choose from 'auto', 'half', 'float16', 'bfloat16', 'float', 'float32')", v)
	}},
	"enforce-eager":              {kindBool, "enforce_eager", func(o *options, _ string) error { o.EnforceEager = true; return nil }},
	"disable-uvicorn-access-log": {kindBool, "disable_uvicorn_access_log", func(o *options, _ string) error { o.DisableAccessLog = true; return nil }},
	"disable-log-stats":          {kindBool, "disable_log_stats", func(o *options, _ string) error { o.DisableLogStats = true; return nil }},
	"enable-sleep-mode":          {kindBool, "enable_sleep_mode", func(o *options, _ string) error { o.EnableSleepMode = true; return nil }},

	"sim-fail":        {kindValue, "", func(o *options, v string) error { return o.setFail(v) }},
	"sim-startup":     {kindValue, "", durSetter(func(o *options, d time.Duration) { o.Startup = d })},
	"sim-fail-after":  {kindValue, "", durSetter(func(o *options, d time.Duration) { o.FailAfter = d })},
	"sim-time-scale":  {kindValue, "", func(o *options, v string) error { return o.setTimeScale(v) }},
	"sim-exit-code":   {kindValue, "", func(o *options, v string) error { return o.setExitCode(v) }},
	"sim-model-check": {kindValue, "", func(o *options, v string) error { return o.setModelCheck(v) }},
	"sim-phase":       {kindValue, "", func(o *options, v string) error { return o.setPhases(v) }},
	"sim-hf-cache":    {kindValue, "", func(o *options, v string) error { o.HFCache = v; return nil }},
	"sim-model-size":  {kindValue, "", gibSetter(func(o *options, g float64) { o.ModelSizeGiB = g })},
	"sim-gpu-mem":     {kindValue, "", gibSetter(func(o *options, g float64) { o.GPUMemGiB = g })},
	"sim-gpu-free":    {kindValue, "", gibSetter(func(o *options, g float64) { o.GPUFreeGiB = g })},
	"sim-host-mem":    {kindValue, "", gibSetter(func(o *options, g float64) { o.HostMemGiB = g })},
	"sim-ttft":        {kindValue, "", durSetter(func(o *options, d time.Duration) { o.TTFT = d })},
	"sim-itl":         {kindValue, "", durSetter(func(o *options, d time.Duration) { o.ITL = d })},
	"sim-legacy-health": {kindValue, "", func(o *options, v string) error {
		o.LegacyHealth = v == "1" || v == "true" || v == "on"
		return nil
	}},
}

// simEnv maps each sim flag to the env var aima injects with `docker run --env`.
var simEnv = []struct{ flag, env string }{
	{"sim-fail", "SIM_FAIL"},
	{"sim-startup", "SIM_STARTUP"},
	{"sim-fail-after", "SIM_FAIL_AFTER"},
	{"sim-time-scale", "SIM_TIME_SCALE"},
	{"sim-exit-code", "SIM_EXIT_CODE"},
	{"sim-model-check", "SIM_MODEL_CHECK"},
	{"sim-phase", "SIM_PHASE"},
	{"sim-hf-cache", "SIM_HF_CACHE"},
	{"sim-model-size", "SIM_MODEL_SIZE"},
	{"sim-gpu-mem", "SIM_GPU_MEM"},
	{"sim-gpu-free", "SIM_GPU_FREE"},
	{"sim-host-mem", "SIM_HOST_MEM"},
	{"sim-ttft", "SIM_TTFT"},
	{"sim-itl", "SIM_ITL"},
	{"sim-legacy-health", "SIM_LEGACY_HEALTH"},
}

// shortFlags are argparse's single-dash aliases.
var shortFlags = map[string]string{"-tp": "tensor-parallel-size", "-pp": "pipeline-parallel-size"}

// pyOrder is the order of vLLM's argparse namespace (frontend args first, then
// EngineArgs), which is the order of the non-default args dict.
var pyOrder = []string{
	"model_tag", "host", "port", "disable_uvicorn_access_log", "api_key", "model", "dtype",
	"max_model_len", "enforce_eager", "served_model_name", "pipeline_parallel_size",
	"tensor_parallel_size", "gpu_memory_utilization", "max_num_batched_tokens", "max_num_seqs",
	"enable_sleep_mode", "disable_log_stats",
}

// defaultOptions returns vLLM's defaults and the simulator's.
func defaultOptions() *options {
	return &options{
		Model: "Qwen/Qwen3-0.6B", Port: 8000, TP: 1, PP: 1, GPUMemUtil: 0.9, Dtype: "auto",
		MaxNumSeqs: 256, Startup: 20 * time.Second, FailAfter: 30 * time.Second,
		TimeScale: 1, ExitCode: -1, ModelCheck: true, GPUMemGiB: 80, Engine: engineVLLM, NGL: -1,
	}
}

// parseServe parses `serve` args the way vLLM's argparse would, then fills
// sim knobs that no flag set from getenv. Unknown --flags are accepted (with a
// value when one follows) because aima may pass any vLLM flag.
func parseServe(args []string, getenv func(string) (string, bool)) (*options, error) {
	o := defaultOptions()
	seen := map[string]bool{}
	var positionals, unknown []string
	var extra []pyArg // unknown flags, printed after the known ones
	values := map[string]string{}
	isFlag := func(s string) bool { return strings.HasPrefix(s, "-") && !isNumber(s) }

	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positionals = append(positionals, args[i+1:]...)
			i = len(args)
			continue
		case a == "-h" || a == "--help":
			return nil, errHelp
		case strings.HasPrefix(a, "-O"): // compilation level shorthand, e.g. -O3
			continue
		case !isFlag(a):
			positionals = append(positionals, a)
			continue
		}
		name, inline, hasInline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		name = strings.ReplaceAll(name, "_", "-")
		if !strings.HasPrefix(a, "--") {
			long, ok := shortFlags["-"+name]
			if !ok {
				unknown = append(unknown, a)
				continue
			}
			name = long
		}
		spec, known := knownFlags[name]
		if !known && strings.HasPrefix(name, "sim-") {
			return nil, &argError{"vllm", "unrecognized arguments: " + a}
		}
		if !known {
			key := strings.ReplaceAll(name, "-", "_")
			switch {
			case hasInline:
				extra = append(extra, pyArg{key, pyStr(inline)})
			case looksBool(name):
				if rest, ok := strings.CutPrefix(key, "no_"); ok {
					extra = append(extra, pyArg{rest, "False"})
				} else {
					extra = append(extra, pyArg{key, "True"})
				}
			case i+1 < len(args) && !isFlag(args[i+1]):
				i++
				extra = append(extra, pyArg{key, pyStr(args[i])})
			default:
				extra = append(extra, pyArg{key, "True"})
			}
			continue
		}
		var vals []string
		switch spec.kind {
		case kindBool:
			if hasInline {
				return nil, &argError{"vllm serve", fmt.Sprintf("argument --%s: ignored explicit argument '%s'", name, inline)}
			}
			vals = []string{""}
		case kindValue:
			if hasInline {
				vals = []string{inline}
			} else if i+1 < len(args) && !isFlag(args[i+1]) {
				i++
				vals = []string{args[i]}
			}
		case kindList:
			if hasInline {
				vals = []string{inline}
			}
			for !hasInline && i+1 < len(args) && !isFlag(args[i+1]) {
				i++
				vals = append(vals, args[i])
			}
		}
		if len(vals) == 0 {
			msg := "expected one argument"
			if spec.kind == kindList {
				msg = "expected at least one argument"
			}
			return nil, &argError{"vllm serve", fmt.Sprintf("argument --%s: %s", name, msg)}
		}
		for _, v := range vals {
			if err := spec.set(o, v); err != nil {
				return nil, &argError{"vllm serve", fmt.Sprintf("argument --%s: %v", name, err)}
			}
		}
		seen[name] = true
		if spec.py != "" {
			values[spec.py] = pyValue(spec, o, vals)
		}
	}

	// `vllm serve MODEL`: one optional positional. The image's ENTRYPOINT
	// already says serve, so a second `serve` is the classic mistake.
	if len(positionals) > 0 && positionals[0] != "serve" {
		o.Model = positionals[0]
		values["model_tag"] = pyStr(positionals[0])
		values["model"] = pyStr(positionals[0])
		positionals = positionals[1:]
	}
	unknown = append(positionals, unknown...)
	if len(unknown) > 0 {
		return nil, &argError{"vllm", "unrecognized arguments: " + strings.Join(unknown, " ")}
	}

	for _, se := range simEnv {
		if seen[se.flag] {
			continue
		}
		if v, ok := getenv(se.env); ok && v != "" {
			if err := knownFlags[se.flag].set(o, v); err != nil {
				return nil, &argError{"vllm serve", fmt.Sprintf("environment variable %s: %v", se.env, err)}
			}
		}
	}
	if v, ok := getenv("VLLM_SERVER_DEV_MODE"); ok && v == "1" {
		o.DevMode = true
	}
	if !seen["api-key"] {
		if v, ok := getenv("VLLM_API_KEY"); ok {
			o.APIKey = v
		}
	}
	if o.TP < 1 || o.PP < 1 {
		return nil, &argError{"vllm serve", "argument --tensor-parallel-size: must be >= 1"}
	}
	o.nonDefault = orderArgs(values, extra)
	return o, nil
}

// errHelp asks the caller to print usage and exit 0.
var errHelp = errors.New("help requested")

// orderArgs drops values equal to vLLM's defaults and sorts the rest in
// argparse namespace order; unknown flags follow in command-line order.
func orderArgs(values map[string]string, extra []pyArg) []pyArg {
	defaults := map[string]string{
		"port": "8000", "tensor_parallel_size": "1", "pipeline_parallel_size": "1",
		"gpu_memory_utilization": "0.9", "dtype": "'auto'", "max_num_seqs": "256",
	}
	var out []pyArg
	for _, k := range pyOrder {
		if v, ok := values[k]; ok && defaults[k] != v {
			out = append(out, pyArg{k, v})
		}
	}
	return append(out, extra...)
}

// pyValue renders a known flag's final value as Python would print it.
func pyValue(spec flagSpec, o *options, vals []string) string {
	switch spec.py {
	case "served_model_name":
		q := make([]string, len(o.ServedNames))
		for i, n := range o.ServedNames {
			q[i] = pyStr(n)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case "api_key":
		return "'<redacted>'" // real 0.11 prints the key; the simulator keeps it out of logs
	case "gpu_memory_utilization":
		return strconv.FormatFloat(o.GPUMemUtil, 'f', -1, 64)
	case "max_model_len":
		return strconv.Itoa(o.MaxModelLen)
	}
	switch spec.kind {
	case kindBool:
		return "True"
	}
	if _, err := strconv.Atoi(vals[len(vals)-1]); err == nil {
		return vals[len(vals)-1]
	}
	return pyStr(vals[len(vals)-1])
}
