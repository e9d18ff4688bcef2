package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"strings"
	"time"
)

// phase is one stage of vLLM's start-up; weight is its share of --sim-startup.
// The split follows what real logs show for a small model with a cold
// torch.compile cache: compile and weight loading dominate, CUDA graphs next.
type phase struct {
	name   string
	weight float64
}

var phases = []phase{
	{"platform", 0.05},     // import torch, detect CUDA, parse args, bind the socket
	{"config", 0.10},       // resolve the model config (model-missing fails here)
	{"engine_spawn", 0.10}, // start EngineCore_DP0, init distributed
	{"load", 0.20},         // weights (oom-load, hang and exit fire here)
	{"compile", 0.25},      // dynamo + inductor
	{"profile", 0.05},      // memory profiling (kv-none fires at its end)
	{"kv", 0.05},           // KV cache allocation
	{"graphs", 0.15},       // CUDA graph capture
	{"post", 0.05},         // API server builds the app, then listens
}

func phaseIndex(name string) int {
	for i, p := range phases {
		if p.name == name {
			return i
		}
	}
	return -1
}

func phaseNames() []string {
	n := make([]string, len(phases))
	for i, p := range phases {
		n[i] = p.name
	}
	return n
}

// phaseDuration is the scaled wall time of a phase: --sim-phase override or
// its weight of --sim-startup. --enforce-eager skips compile and graphs, as
// in vLLM, so the whole start-up gets shorter.
func (o *options) phaseDuration(name string) time.Duration {
	if o.EnforceEager && (name == "compile" || name == "graphs") {
		return 0
	}
	if d, ok := o.PhaseOverride[name]; ok {
		return o.scale(d)
	}
	return o.scale(time.Duration(phases[phaseIndex(name)].weight * float64(o.Startup)))
}

// clock schedules lines inside one phase at fractions of its duration.
// Phases are laid end to end on planned (not measured) times, so log output
// does not drift even when the machine is slow.
type clock struct {
	start time.Time
	dur   time.Duration
}

// phase starts the named phase right where the previous one was planned to end.
func (s *sim) phase(name string) clock {
	c := clock{start: s.cursor, dur: s.o.phaseDuration(name)}
	s.cursor = c.start.Add(c.dur)
	return c
}

// at waits until frac of the phase has elapsed; false means SIGTERM/SIGINT.
func (c clock) at(ctx context.Context, frac float64) bool {
	return sleepUntil(ctx, c.start.Add(time.Duration(frac*float64(c.dur))))
}

// sleepUntil blocks on a timer, never a bare time.Sleep, so a signal that
// cancels ctx interrupts start-up at once.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// loadPhase prints weight loading; oom-load, hang and exit fire half way.
func (s *sim) loadPhase(ctx context.Context) (code int, ok bool) {
	o, L, mi := s.o, s.log, s.model
	c := s.phase("load")
	L.engine("INFO", "cuda.py:366", "Using Flash Attention backend on V1 engine.")
	if !c.at(ctx, 0.1) {
		return 0, false
	}
	format := "['*.safetensors']"
	if mi.GGUF {
		format = "['*.gguf']"
	}
	L.engine("INFO", "weight_utils.py:392", "Using model weights format %s", format)
	if !c.at(ctx, 0.15) {
		return 0, false
	}
	barStart := time.Now()
	L.stderr(procEngine, vllmShardBar(0, mi.Shards, 0))
	for i := 1; i <= mi.Shards; i++ {
		frac := 0.15 + 0.75*float64(i)/float64(mi.Shards)
		if s.modelProblem == "oom-load" && frac > 0.5 {
			if !c.at(ctx, 0.5) {
				return 0, false
			}
			return s.failOOMLoad(), false
		}
		if o.Fail != "" && frac > 0.5 && (o.Fail == "oom-load" || o.Fail == "hang" || o.Fail == "exit") {
			if !c.at(ctx, 0.5) {
				return 0, false
			}
			switch o.Fail {
			case "oom-load":
				return s.failOOMLoad(), false
			case "exit":
				return s.exitCode(1), false
			}
			<-ctx.Done() // hang: silent, no port, until SIGTERM/SIGKILL
			return 0, false
		}
		if !c.at(ctx, frac) {
			return 0, false
		}
		L.stderr(procEngine, vllmShardBar(i, mi.Shards, time.Since(barStart)))
	}
	L.stderr(procEngine, "")
	if !c.at(ctx, 0.92) {
		return 0, false
	}
	L.engine("INFO", "default_loader.py:267", "Loading weights took %.2f seconds", time.Since(barStart).Seconds())
	if !c.at(ctx, 1) {
		return 0, false
	}
	L.engine("INFO", "gpu_model_runner.py:2653", "Model loading took %.4f GiB and %.6f seconds", mi.SizeGiB/float64(o.TP*o.PP), time.Since(c.start).Seconds())
	return 0, true
}

// graphsPhase draws the two CUDA-graph tqdm bars: one stderr line each,
// redrawn with '\r' like tqdm does when stderr is not a terminal.
func (s *sim) graphsPhase(ctx context.Context) bool {
	c := s.phase("graphs")
	if s.o.EnforceEager {
		return true
	}
	bars := []struct {
		desc      string
		total     int
		from, end float64
	}{
		{"Capturing CUDA graphs (mixed prefill-decode, PIECEWISE)", 67, 0, 0.55},
		{"Capturing CUDA graphs (decode, FULL)", 35, 0.55, 0.9},
	}
	for _, b := range bars {
		start := time.Now()
		var line strings.Builder
		line.WriteString(tqdmBar(b.desc, 0, b.total, 0))
		for _, f := range []float64{0.5, 1} {
			if !c.at(ctx, b.from+(b.end-b.from)*f) {
				return false
			}
			line.WriteString("\r" + tqdmBar(b.desc, int(float64(b.total)*f), b.total, time.Since(start)))
		}
		s.log.stderr(procEngine, line.String())
	}
	if !c.at(ctx, 1) {
		return false
	}
	s.log.engine("INFO", "gpu_model_runner.py:3480", "Graph capturing finished in %d secs, took 0.53 GiB", int(time.Since(c.start).Seconds()+0.5))
	return true
}

// postPhase is the API server's part after the engine is ready: it logs the
// routes, then listens, then prints uvicorn's start-up lines.
func (s *sim) postPhase(ctx context.Context) (net.Listener, int) {
	o, L := s.o, s.log
	c := s.phase("post")
	if !c.at(ctx, 0.1) {
		return nil, 0
	}
	L.api("INFO", "loggers.py:147", "Engine 000: vllm cache_config_info with initialization after num_gpu_blocks is: %d", s.kvTokens/16)
	if !c.at(ctx, 0.5) {
		return nil, 0
	}
	L.api("INFO", "api_server.py:1634", "Supported_tasks: ['generate']")
	if s.model.GenerationConfig {
		L.api("WARNING", "model.py:1389", "Default sampling parameters have been overridden by the model's Hugging Face generation config recommended from the model creator. If this is not intended, please relaunch vLLM instance with `--generation-config vllm`.")
	}
	if !c.at(ctx, 1) {
		return nil, 0
	}
	var ln net.Listener
	var err error
	if o.Port == 0 { // an ephemeral port must be known before it is printed
		if ln, err = net.Listen("tcp", listenAddr(o)); err != nil {
			return nil, s.failBind(err)
		}
	}
	port := o.Port
	if ln != nil {
		port = ln.Addr().(*net.TCPAddr).Port
	}
	L.api("INFO", "api_server.py:1912", "Starting vLLM API server 0 on http://%s:%d", o.displayHost(), port)
	L.api("INFO", "launcher.py:34", "Available routes are:")
	for _, r := range advertisedRoutes {
		L.api("INFO", "launcher.py:42", "Route: %s, Methods: %s", r[0], r[1])
	}
	L.uvicorn("INFO", "Started server process [%d]", L.apiPID)
	L.uvicorn("INFO", "Waiting for application startup.")
	// Listen, then announce: whoever sees `Application startup complete.`
	// can connect at once, and nobody can connect before `Waiting for
	// application startup.` (the last line before it).
	if ln == nil {
		if ln, err = net.Listen("tcp", listenAddr(o)); err != nil {
			return nil, s.failBind(err)
		}
	}
	L.uvicorn("INFO", "Application startup complete.")
	return ln, 0
}

// advertisedRoutes is vLLM 0.11's route listing; the simulator implements the
// ones aima uses and answers 404 for the rest.
var advertisedRoutes = [][2]string{
	{"/openapi.json", "HEAD, GET"}, {"/docs", "HEAD, GET"}, {"/docs/oauth2-redirect", "HEAD, GET"},
	{"/redoc", "HEAD, GET"}, {"/health", "GET"}, {"/load", "GET"}, {"/ping", "POST"}, {"/ping", "GET"},
	{"/tokenize", "POST"}, {"/detokenize", "POST"}, {"/v1/models", "GET"}, {"/version", "GET"},
	{"/v1/responses", "POST"}, {"/v1/responses/{response_id}", "GET"},
	{"/v1/responses/{response_id}/cancel", "POST"}, {"/v1/chat/completions", "POST"},
	{"/v1/completions", "POST"}, {"/v1/embeddings", "POST"}, {"/pooling", "POST"},
	{"/classify", "POST"}, {"/score", "POST"}, {"/v1/score", "POST"},
	{"/v1/audio/transcriptions", "POST"}, {"/v1/audio/translations", "POST"}, {"/rerank", "POST"},
	{"/v1/rerank", "POST"}, {"/v2/rerank", "POST"}, {"/scale_elastic_ep", "POST"},
	{"/is_scaling_elastic_ep", "POST"}, {"/invocations", "POST"}, {"/metrics", "GET"},
}

func listenAddr(o *options) string { return net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) }

// portFree mimics vLLM's early bind: it fails when something already listens.
func portFree(o *options) bool {
	if o.Port == 0 {
		return true
	}
	ln, err := net.Listen("tcp", listenAddr(o))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// engineConfig renders the (abridged) config dump of the engine init line.
func (s *sim) engineConfig() string {
	o := s.o
	return fmt.Sprintf("model=%s, speculative_config=None, tokenizer=%s, skip_tokenizer_init=False, "+
		"tokenizer_mode=auto, revision=None, tokenizer_revision=None, trust_remote_code=False, "+
		"dtype=torch.%s, max_seq_len=%d, download_dir=None, load_format=auto, tensor_parallel_size=%d, "+
		"pipeline_parallel_size=%d, data_parallel_size=1, disable_custom_all_reduce=False, quantization=None, "+
		"enforce_eager=%s, kv_cache_dtype=auto, device_config=cuda, seed=0, served_model_name=%s, "+
		"enable_prefix_caching=True, chunked_prefill_enabled=True, pooler_config=None, "+
		"compilation_config={\"level\":%d,\"cudagraph_mode\":%s,\"use_inductor\":true}",
		pyStr(o.Model), pyStr(o.Model), s.model.dtype(o), s.maxLen, o.TP, o.PP, pyBool(o.EnforceEager),
		s.o.servedNames()[0], map[bool]int{false: 3, true: 0}[o.EnforceEager],
		map[bool]string{false: "[2,1]", true: "0"}[o.EnforceEager])
}

// compileHash is a stable 10-hex-digit cache key, like vLLM's config hash.
func (s *sim) compileHash() string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s.o.Model + s.model.dtype(s.o) + strconv.Itoa(s.maxLen)))
	return fmt.Sprintf("%016x", h.Sum64())[:10]
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// pyDict renders the non-default args like Python's dict repr.
func pyDict(args []pyArg) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = pyStr(a.key) + ": " + a.repr
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
