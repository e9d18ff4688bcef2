// Package engines is aima's built-in catalog of inference engines (vLLM,
// SGLang, llama.cpp): which image to run, which port the engine listens on,
// how to pass it a model, how to tell it is ready, and how to read its
// start-up log lines. The config file can override image, GPUs, args and env.
package engines

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"aima/errs"
	"aima/gpu"
	"aima/settings"
)

// Engine describes how to run one engine type as a container.
type Engine struct {
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Image       string            `json:"image"`
	Port        int               `json:"port"`        // the engine's port inside the container
	HealthPath  string            `json:"health_path"` // HTTP 200 here means ready
	GPUs        string            `json:"gpus"`        // auto, all, none, N, or device=ID[,ID...] (gpu.ParseSelection)
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	ShmSize     int64             `json:"shm_size,omitempty"`
	// MemoryLimit caps the container's host memory in bytes (0: none): the
	// kernel OOM-kills an engine above it (Docker's memory limit, the Pod's
	// limits.memory).
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	// MetricsPath is where the engine serves Prometheus metrics (turned on
	// by its default Args where the engine needs a flag for it).
	MetricsPath string `json:"metrics_path"`
	// Metrics names the engine's own series behind the figures aima reads
	// from it (service_metrics, the dashboard).
	Metrics MetricNames `json:"-"`
	// ModelArgs builds the arguments that name the model and the port.
	ModelArgs func(model, servedName string, port int) []string `json:"-"`
	// ManagedFlags are the engine flags aima sets itself (ModelArgs): the
	// model, the served name, the listen host and port. A service or config
	// arg that sets one again is refused (ManagedFlag): the engine would
	// serve another model than the record says, or listen where the port
	// mapping and the health check do not look.
	ManagedFlags []string `json:"-"`
	// Milestones turn the engine's own log lines into loading messages.
	Milestones []Milestone `json:"-"`
	// ReadyLine matches the log line the engine prints when it starts
	// serving; aima then enters the health_check phase.
	ReadyLine *regexp.Regexp `json:"-"`
	// ReadyNeedsLine: a 200 from HealthPath counts only after ReadyLine
	// was seen. SGLang needs it: older builds answer /health 200 while
	// the server is still starting; only the fired-up line says its
	// warmup generation is done.
	ReadyNeedsLine bool `json:"-"`
	// Failures recognise the engine's own failure lines, most specific
	// first (Diagnose).
	Failures []FailureRule `json:"-"`
	// Sleep, when set, is how the engine frees its GPU memory without
	// exiting, so a release costs seconds to undo instead of a cold start.
	Sleep *SleepMode `json:"sleep,omitempty"`
	// CanSleep says whether the engine has a sleep mode. One without
	// (llama.cpp) is stopped when idle and started by the next request.
	CanSleep bool `json:"can_sleep"`
}

// SleepMode describes an engine's sleep endpoints (vLLM: --enable-sleep-mode,
// served only with VLLM_SERVER_DEV_MODE=1; SGLang: --enable-memory-saver
// and its release/resume memory occupation endpoints).
type SleepMode struct {
	Args      []string          `json:"args"`           // added to the command line of services that may sleep
	Env       map[string]string `json:"env"`            // added to their environment
	SleepPath string            `json:"sleep_path"`     // POST; frees the GPU memory of the weights and the KV cache
	WakePath  string            `json:"wake_path"`      // POST
	Body      string            `json:"body,omitempty"` // JSON body of both POSTs ("" = none)
}

// MetricNames are an engine's Prometheus series for the figures aima shows
// for every engine alike. Each lists the names in order of preference (an
// engine renames series between versions); an empty list means the engine
// has no such series.
type MetricNames struct {
	RequestsRunning  []string // gauge: requests being processed
	RequestsWaiting  []string // gauge: requests queued
	KVCacheUsage     []string // gauge, 0-1: share of the KV cache in use
	PromptTokens     []string // counter: prompt (prefill) tokens processed
	GenerationTokens []string // counter: tokens generated
}

// Milestone maps a log line pattern to a short human message.
type Milestone struct {
	Pattern *regexp.Regexp
	Message string // may use $1.. from the pattern
}

// Builtin returns the built-in catalog, keyed by engine type.
func Builtin() map[string]Engine {
	all := map[string]Engine{
		"vllm": {
			Type:        "vllm",
			Description: "vLLM OpenAI-compatible server",
			Image:       "vllm/vllm-openai:v0.11.0",
			Port:        8000,
			HealthPath:  "/health",
			GPUs:        "auto",
			ShmSize:     1 << 30,
			MetricsPath: "/metrics", // on by default
			Metrics: MetricNames{
				RequestsRunning:  []string{"vllm:num_requests_running"},
				RequestsWaiting:  []string{"vllm:num_requests_waiting"},
				KVCacheUsage:     []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"},
				PromptTokens:     []string{"vllm:prompt_tokens_total"},
				GenerationTokens: []string{"vllm:generation_tokens_total"},
			},
			ModelArgs: func(model, served string, port int) []string {
				args := []string{"--model", model}
				if served != "" {
					args = append(args, "--served-model-name", served)
				}
				return append(args, "--host", "0.0.0.0", "--port", fmt.Sprint(port))
			},
			ManagedFlags: []string{"--model", "--served-model-name", "--host", "--port"},
			Milestones: []Milestone{
				{regexp.MustCompile(`Resolved architecture: (\S+)`), "resolved architecture $1"},
				{regexp.MustCompile(`Using max model len (\d+)`), "max model len $1"},
				{regexp.MustCompile(`Loading weights took ([\d.]+) seconds`), "weights loaded in $1 s"},
				{regexp.MustCompile(`Model loading took ([\d.]+ \w+) and ([\d.]+) seconds`), "model loaded: $1 in $2 s"},
				{regexp.MustCompile(`torch.compile takes ([\d.]+) s in total`), "torch.compile took $1 s"},
				{regexp.MustCompile(`Available KV cache memory: ([\d.]+ \w+)`), "KV cache memory $1"},
				{regexp.MustCompile(`GPU KV cache size: ([\d,]+) tokens`), "KV cache size $1 tokens"},
				{regexp.MustCompile(`Graph capturing finished in (\d+) secs`), "CUDA graphs captured in $1 s"},
				{regexp.MustCompile(`init engine .* took ([\d.]+) seconds`), "engine initialised in $1 s"},
				{regexp.MustCompile(`Starting vLLM (?:API )?server`), "API server starting"},
				{regexp.MustCompile(`Application startup complete`), "application startup complete"},
			},
			ReadyLine: regexp.MustCompile(`Application startup complete|Starting vLLM (?:API )?server`),
			Failures:  vllmFailures,
			Sleep: &SleepMode{
				Args: []string{"--enable-sleep-mode"}, Env: map[string]string{"VLLM_SERVER_DEV_MODE": "1"},
				SleepPath: "/sleep?level=1", WakePath: "/wake_up",
			},
		},
		"sglang": {
			Type:        "sglang",
			Description: "SGLang server",
			Image:       "lmsysorg/sglang:v0.5.5",
			Port:        30000,
			// /health is 503 until the warmup is done; the environment
			// keeps it from running a generation on every probe (builds
			// where it would), so it costs no GPU time.
			HealthPath:  "/health",
			GPUs:        "auto",
			ShmSize:     1 << 30,
			Args:        []string{"--enable-metrics"},
			Env:         map[string]string{"SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION": "false"},
			MetricsPath: "/metrics",
			Metrics: MetricNames{
				RequestsRunning:  []string{"sglang:num_running_reqs"},
				RequestsWaiting:  []string{"sglang:num_queue_reqs"},
				KVCacheUsage:     []string{"sglang:token_usage"},
				PromptTokens:     []string{"sglang:prompt_tokens_total"},
				GenerationTokens: []string{"sglang:generation_tokens_total"},
			},
			ModelArgs: func(model, served string, port int) []string {
				args := []string{"python3", "-m", "sglang.launch_server", "--model-path", model}
				if served != "" {
					args = append(args, "--served-model-name", served)
				}
				return append(args, "--host", "0.0.0.0", "--port", fmt.Sprint(port))
			},
			ManagedFlags: []string{"--model-path", "--model", "--served-model-name", "--host", "--port"},
			Milestones: []Milestone{
				{regexp.MustCompile(`Load weight begin\. avail mem=([\d.]+ GB)`), "loading weights ($1 free)"},
				{regexp.MustCompile(`Load weight end\. elapsed=([\d.]+) s`), "weights loaded in $1 s"},
				{regexp.MustCompile(`Load weight end\. type=([^,]+), .*mem usage=([\d.]+ GB)`), "weights loaded: $1, $2"},
				{regexp.MustCompile(`KV Cache is allocated\. #tokens: (\d+)`), "KV cache allocated: $1 tokens"},
				{regexp.MustCompile(`Capture cuda graph end\. Time elapsed: ([\d.]+) s`), "CUDA graphs captured in $1 s"},
				{regexp.MustCompile(`Uvicorn running on`), "HTTP server listening; warming up"},
				{regexp.MustCompile(`fired up and ready to roll`), "server fired up"},
			},
			ReadyLine:      regexp.MustCompile(`fired up and ready to roll`),
			ReadyNeedsLine: true,
			Failures:       sglangFailures,
			Sleep: &SleepMode{
				Args:      []string{"--enable-memory-saver"},
				SleepPath: "/release_memory_occupation", WakePath: "/resume_memory_occupation", Body: "{}",
			},
		},
		"llamacpp": {
			Type:        "llamacpp",
			Description: "llama.cpp llama-server (GGUF models)",
			Image:       "ghcr.io/ggml-org/llama.cpp:server-b6900",
			Port:        8080,
			// /health answers 503 "Loading model" while loading (loading,
			// not failure) and {"status":"ok"} after; it never generates.
			HealthPath:  "/health",
			GPUs:        "auto",
			Args:        []string{"--metrics"},
			MetricsPath: "/metrics",
			Metrics: MetricNames{
				RequestsRunning:  []string{"llamacpp:requests_processing"},
				RequestsWaiting:  []string{"llamacpp:requests_deferred"},
				KVCacheUsage:     []string{"llamacpp:kv_cache_usage_ratio"},
				PromptTokens:     []string{"llamacpp:prompt_tokens_total"},
				GenerationTokens: []string{"llamacpp:tokens_predicted_total"},
			},
			ModelArgs: func(model, served string, port int) []string {
				args := []string{"-m", model}
				if served != "" {
					args = append(args, "--alias", served)
				}
				return append(args, "--host", "0.0.0.0", "--port", fmt.Sprint(port))
			},
			ManagedFlags: []string{"-m", "--model", "--alias", "-a", "--host", "--port"},
			Milestones: []Milestone{
				{regexp.MustCompile(`HTTP server is listening`), "HTTP server listening; loading the model"},
				{regexp.MustCompile(`llama_model_loader: loaded meta data with (\d+) key-value pairs and (\d+) tensors`), "GGUF header read: $1 keys, $2 tensors"},
				{regexp.MustCompile(`print_info: arch\s+= (\S+)`), "architecture $1"},
				{regexp.MustCompile(`load_tensors: offloaded (\d+)/(\d+) layers to GPU`), "$1/$2 layers offloaded to the GPU"},
				{regexp.MustCompile(`load_tensors:\s+CUDA\d+ model buffer size =\s+([\d.]+ MiB)`), "weights on the GPU: $1"},
				{regexp.MustCompile(`llama_kv_cache: size =\s+([\d.]+ MiB) \(\s*(\d+) cells`), "KV cache $1 for $2 tokens"},
				{regexp.MustCompile(`(?:main|llama_server): model loaded`), "model loaded"},
			},
			ReadyLine: regexp.MustCompile(`server is listening on http|(?:main|llama_server): model loaded`),
			Failures:  llamaFailures,
		},
	}
	for k, e := range all {
		e.CanSleep = e.Sleep != nil
		all[k] = e
	}
	return all
}

// Catalog is the effective set of engines after config overrides.
type Catalog struct {
	engines map[string]Engine
}

// NewCatalog applies overrides (the config file's engines section) to the
// built-in catalog. An override for an unknown engine type, with a bad GPU
// spec, a negative memory limit or an arg aima sets itself is an
// InvalidArgument error on field engines.
func NewCatalog(overrides map[string]settings.EngineOverride) (*Catalog, error) {
	all := Builtin()
	for name, o := range overrides {
		e, ok := all[name]
		if !ok {
			return nil, errs.Invalid("engines", "config: unknown engine type %q (known: %s)", name, strings.Join(sortedKeys(all), ", "))
		}
		if o.Image != "" {
			e.Image = o.Image
		}
		if o.GPUs != "" {
			if _, err := gpu.ParseSelection(o.GPUs); err != nil {
				return nil, errs.Invalid("engines", "config: engine %s: %v", name, err)
			}
			e.GPUs = o.GPUs
		}
		for _, a := range o.Args {
			if f, ok := e.ManagedFlag(a); ok {
				return nil, errs.Invalid("engines", "config: engine %s: arg %q sets %s, which aima sets itself (model, served name, host and port come from the service)", name, a, f)
			}
		}
		e.Args = append(append([]string(nil), e.Args...), o.Args...)
		if o.MemoryLimitMiB < 0 {
			return nil, errs.Invalid("engines", "config: engine %s: memory_limit_mib %d is negative", name, o.MemoryLimitMiB)
		}
		e.MemoryLimit = o.MemoryLimitMiB << 20
		if len(o.Env) > 0 {
			env := map[string]string{}
			for k, v := range e.Env {
				env[k] = v
			}
			for k, v := range o.Env {
				env[k] = v
			}
			e.Env = env
		}
		all[name] = e
	}
	return &Catalog{engines: all}, nil
}

// ManagedFlag reports whether arg sets one of the engine's ManagedFlags, in
// any spelling the engines accept: "--port", "--port=8000", and for long
// flags "_" for "-" (vLLM reads --served_model_name as --served-model-name).
func (e Engine) ManagedFlag(arg string) (string, bool) {
	name, _, _ := strings.Cut(arg, "=")
	if strings.HasPrefix(name, "--") {
		name = strings.ReplaceAll(name, "_", "-")
	}
	for _, f := range e.ManagedFlags {
		if name == f {
			return f, true
		}
	}
	return "", false
}

// Get returns the engine of the given type.
func (c *Catalog) Get(engineType string) (Engine, error) {
	e, ok := c.engines[engineType]
	if !ok {
		return Engine{}, errs.Invalid("engine_type", "unknown engine type %q (known: %s)", engineType, strings.Join(sortedKeys(c.engines), ", "))
	}
	return e, nil
}

// List returns the engines sorted by type.
func (c *Catalog) List() []Engine {
	out := make([]Engine, 0, len(c.engines))
	for _, k := range sortedKeys(c.engines) {
		out = append(out, c.engines[k])
	}
	return out
}

func sortedKeys(m map[string]Engine) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
