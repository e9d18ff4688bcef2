package engines

import "regexp"

// FailureRule recognises one of an engine's own failure lines: the root
// cause it prints (not a wrapper such as vLLM's "Engine core
// initialization failed" or llama-server's "exiting due to model loading
// error"), what kind of failure it is, and what to do about it in the
// engine's own flags.
type FailureRule struct {
	Pattern *regexp.Regexp
	// Memory: the engine ran out of GPU memory; aima reads the GPUs'
	// state right after the failure and adds it to the reason.
	Memory bool
	// PortInUse: the engine could not bind its HTTP port.
	PortInUse bool
	// Suggestion is what would make the start work, in the engine's flags.
	Suggestion string
}

// Diagnose finds the engine's root-cause line in the last lines of a failed
// run: the first rule (most specific first) that any line matches, and of
// its matches the last line (the final line of the last traceback). It
// returns "" and nil when no rule matches.
func (e Engine) Diagnose(lines []string) (string, *FailureRule) {
	for i := range e.Failures {
		r := &e.Failures[i]
		for j := len(lines) - 1; j >= 0; j-- {
			if r.Pattern.MatchString(lines[j]) {
				return lines[j], r
			}
		}
	}
	return "", nil
}

// vllmFailures are vLLM's start-up failures (engines.md §3.1).
var vllmFailures = []FailureRule{
	{Pattern: regexp.MustCompile(`Free memory on device .* is less than desired GPU memory utilization`), Memory: true,
		Suggestion: "other processes use the GPU: lower --gpu-memory-utilization below the free share, or stop them"},
	{Pattern: regexp.MustCompile(`Error: (?:No available memory for the cache blocks|To serve at least one request.*KV cache is needed|The model's max seq len .* stored in KV cache)`), Memory: true,
		Suggestion: "the KV cache does not fit: lower --max-model-len, raise --gpu-memory-utilization, or add --tensor-parallel-size"},
	{Pattern: regexp.MustCompile(`OutOfMemoryError: CUDA out of memory`), Memory: true,
		Suggestion: "the weights do not fit: use more GPUs (--tensor-parallel-size), a quantized model, or free memory on the GPU"},
	{Pattern: regexp.MustCompile(`OSError: \[Errno 98\] Address already in use|\[Errno 98\] error while attempting to bind`), PortInUse: true,
		Suggestion: "another process in the container's network holds the engine's port"},
}

// sglangFailures are SGLang's start-up failures (engines.md §4.5). Its
// scheduler wraps each in "Scheduler hit an exception:"; the exception's
// own line is the root cause.
var sglangFailures = []FailureRule{
	{Pattern: regexp.MustCompile(`RuntimeError: Not enough memory\. Please try to increase --mem-fraction-static`), Memory: true,
		Suggestion: "the KV cache pool does not fit in --mem-fraction-static of the GPU after the weights: raise --mem-fraction-static (up to ~0.9), lower --context-length, or add GPUs with --tp-size"},
	{Pattern: regexp.MustCompile(`OutOfMemoryError: CUDA out of memory`), Memory: true,
		Suggestion: "the weights do not fit: add GPUs with --tp-size, use a quantized model, lower --mem-fraction-static to leave room for activations, or free memory on the GPU"},
	{Pattern: regexp.MustCompile(`\[Errno 98\] error while attempting to bind on address`), PortInUse: true,
		Suggestion: "another process in the container's network holds the engine's port (SGLang binds it only after loading)"},
	{Pattern: regexp.MustCompile(`OSError: Can't load the configuration of`),
		Suggestion: "--model-path must be a directory with config.json (or a cached Hugging Face repository id)"},
}

// llamaFailures are llama-server's start-up failures (engines.md §4.5).
// Every loading failure ends with "exiting due to model loading error";
// the root cause is above it.
var llamaFailures = []FailureRule{
	{Pattern: regexp.MustCompile(`failed to allocate buffer for kv cache|failed to initialize the context: .*kv cache`), Memory: true,
		Suggestion: "the KV cache does not fit: lower -c (the context, shared by the -np slots), use fewer -np slots, or quantize the KV cache (-ctk q8_0 -ctv q8_0)"},
	{Pattern: regexp.MustCompile(`cudaMalloc failed: out of memory|unable to allocate CUDA\d* buffer|failed to allocate CUDA\d* buffer`), Memory: true,
		Suggestion: "the weights do not fit on the GPU: offload fewer layers with -ngl (the rest run from host memory), use a smaller quantization, or free memory on the GPU"},
	{Pattern: regexp.MustCompile(`failed to open GGUF file`),
		Suggestion: "-m must name a GGUF file inside the container"},
	{Pattern: regexp.MustCompile(`invalid magic characters`),
		Suggestion: "the model file is not a GGUF file (llama.cpp reads only GGUF)"},
	{Pattern: regexp.MustCompile(`unknown model architecture`),
		Suggestion: "this llama.cpp build does not know the model's architecture: use a newer llama.cpp image"},
	{Pattern: regexp.MustCompile(`couldn't bind HTTP server socket`), PortInUse: true,
		Suggestion: "another process in the container's network holds the engine's port"},
}
