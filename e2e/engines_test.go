package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aima/internal/testenv"
)

// engineCase is one engine's part of the scenario: its model, the
// milestones its start shows (in order), lines its log must have, and a
// series of its own on /metrics/engines.
type engineCase struct {
	engine     string
	model      func(t *testing.T, name string) string
	milestones []string
	logLines   []string
	series     string
	// What /v1/embeddings answers (vLLM's generation model has none;
	// llama-server needs --embeddings), and the engine's words for a
	// request longer than its context.
	embedCode          int
	embedWant, tooLong string
}

var engineCases = []engineCase{
	{"vllm", func(t *testing.T, name string) string { return testenv.MakeModel(t, name) },
		[]string{"resolved architecture Qwen2ForCausalLM", "weights loaded in", "KV cache size", "application startup complete"},
		[]string{"Resolved architecture", "Application startup complete."}, "vllm:num_requests_running",
		404, `"message":"Not Found"`, "maximum context length is 32768 tokens"},
	{"sglang", func(t *testing.T, name string) string { return testenv.MakeModel(t, name) },
		[]string{"loading weights", "weights loaded: Qwen2ForCausalLM", "KV cache allocated", "CUDA graphs captured in",
			"HTTP server listening; warming up", "server fired up"},
		[]string{"Load weight end.", "KV Cache is allocated.", "The server is fired up and ready to roll!"}, "sglang:num_running_reqs",
		200, `"object":"embedding"`, "exceeds the model's maximum context length of 32768 tokens"},
	{"llamacpp", func(t *testing.T, name string) string {
		return testenv.MakeGGUF(t, name, testenv.GGUFOptions{Layers: 22, Context: 2048})
	},
		[]string{"HTTP server listening; loading the model", "GGUF header read: 8 keys, 1 tensors", "architecture llama",
			"23/23 layers offloaded to the GPU", "KV cache", "model loaded"},
		[]string{"load_tensors: offloaded 23/23 layers to GPU", "main: model loaded"}, "llamacpp:requests_processing",
		501, `"type":"not_supported_error"`, "exceeds the available context size"},
}

type engineSvcJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Status      string   `json:"status"`
	Reason      string   `json:"reason"`
	Failure     string   `json:"failure"`
	EngineError string   `json:"engine_error"`
	ExitCode    *int     `json:"exit_code"`
	Endpoint    string   `json:"endpoint"`
	LogTail     []string `json:"log_tail"`
}

// TestEnginesScenario runs the seed's scenario against each engine's
// simulator personality on the real Docker engine: create, start --wait
// (the engine's milestones in order), logs, status over HTTP = CLI, a
// chat through /v1, the engine's metrics, stop.
func TestEnginesScenario(t *testing.T) {
	testenv.RequireDocker(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{})})
	for _, tc := range engineCases {
		t.Run(tc.engine, func(t *testing.T) {
			modelName := "tiny-" + tc.engine
			d.MustCLI(t, "model", "add", "--path", tc.model(t, modelName))
			d.MustCLI(t, "service", "create", "--model-id", modelName, "--engine-type", tc.engine, "--name", "svc-"+tc.engine)
			svc := testenv.DecodeJSON[engineSvcJSON](t, d.MustCLI(t, "service", "status", "svc-"+tc.engine, "-o", "json").Stdout)
			testenv.RemoveContainersWithLabel(t, "aima.service", svc.ID)

			start := d.MustCLI(t, "service", "start", svc.ID, "--wait", "--timeout", "120")
			assertPhasesInOrder(t, start.Stderr, "cleanup", "pull", "create", "start", "loading", "health_check", "running")
			assertInOrderText(t, start.Stderr, tc.milestones)

			logs := d.MustCLI(t, "service", "logs", svc.ID)
			for _, want := range tc.logLines {
				if !strings.Contains(logs.Stdout, want) {
					t.Errorf("service logs lack %q:\n%s", want, logs.Stdout)
				}
			}
			var st engineSvcJSON
			d.GetJSON(t, "/api/service/status?service_id="+svc.ID, &st)
			cli := testenv.DecodeJSON[engineSvcJSON](t, d.MustCLI(t, "service", "status", svc.ID, "-o", "json").Stdout)
			if st.Status != "running" || cli.Status != st.Status || cli.Endpoint != st.Endpoint || cli.Name != st.Name {
				t.Fatalf("status: HTTP %+v, CLI %+v, want both running and equal", st, cli)
			}

			code, body, err := d.Post("/v1/chat/completions", map[string]any{"model": modelName,
				"messages": []map[string]string{{"role": "user", "content": "Hello from " + tc.engine}}})
			if err != nil || code != 200 || !strings.Contains(string(body), "Hello from "+tc.engine) {
				t.Fatalf("chat through /v1: %d %s %v", code, body, err)
			}

			// Streaming, embeddings and the engine's own errors, through /v1.
			code, body, err = d.Post("/v1/chat/completions", map[string]any{"model": modelName, "stream": true,
				"messages": []map[string]string{{"role": "user", "content": "stream it"}}})
			if err != nil || code != 200 || !strings.Contains(string(body), `" it"`) || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
				t.Errorf("streamed chat through /v1: %d %s %v", code, body, err)
			}
			code, body, err = d.Post("/v1/embeddings", map[string]any{"model": modelName, "input": "embed me"})
			if err != nil || code != tc.embedCode || !strings.Contains(string(body), tc.embedWant) {
				t.Errorf("embeddings through /v1: %d %s %v, want %d with %q", code, body, err, tc.embedCode, tc.embedWant)
			}
			code, body, err = d.Post("/v1/chat/completions", map[string]any{"model": modelName, "max_tokens": 1000000,
				"messages": []map[string]string{{"role": "user", "content": "too long"}}})
			var oe struct {
				Error struct {
					Message string `json:"message"`
					Type    string `json:"type"`
				} `json:"error"`
			}
			if err != nil || code != 400 || json.Unmarshal(body, &oe) != nil || !strings.Contains(oe.Error.Message, tc.tooLong) || oe.Error.Type == "" {
				t.Errorf("the engine's context error through /v1: %d %s %v, want 400 OpenAI error with %q", code, body, err, tc.tooLong)
			}

			fig := testenv.DecodeJSON[figuresJSON](t, d.MustCLI(t, "service", "metrics", svc.ID, "-o", "json").Stdout)
			if !fig.ScrapeOK || fig.RequestsRunning == nil || fig.KVCacheUsage == nil || fig.GenTotal == nil || *fig.GenTotal < 3 {
				t.Errorf("service metrics from the engine's own series: %+v", fig)
			}
			code, body, err = d.Get("/metrics/engines")
			if err != nil || code != 200 || !strings.Contains(string(body), tc.series+"{") || !strings.Contains(string(body), `aima_service="`+svc.ID+`"`) {
				t.Errorf("/metrics/engines lacks %s relabelled for %s: %d %v\n%.2000s", tc.series, svc.ID, code, err, body)
			}

			d.MustCLI(t, "service", "stop", svc.ID)
			if s := testenv.DecodeJSON[engineSvcJSON](t, d.MustCLI(t, "service", "status", svc.ID, "-o", "json").Stdout); s.Status != "stopped" {
				t.Errorf("after stop: %q", s.Status)
			}
		})
	}
}

// TestEnginesFailedStarts starts each engine into each of its failure
// classes: the start ends failed, with the engine's own line, the failure
// kind, and (for memory) the suggestion in the engine's own flags.
func TestEnginesFailedStarts(t *testing.T) {
	testenv.RequireDocker(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{})})
	dir := t.TempDir()
	badGGUF := filepath.Join(dir, "bad-magic.gguf")
	if err := os.WriteFile(badGGUF, []byte("xxxx: not a GGUF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	models := map[string]string{
		"hf":     testenv.MakeModel(t, "hf-model"),
		"gguf":   testenv.MakeGGUF(t, "gguf-model", testenv.GGUFOptions{}),
		"gemma4": testenv.MakeGGUF(t, "gemma4-model", testenv.GGUFOptions{Arch: "gemma4"}),
		"bad":    badGGUF,
	}
	for _, p := range models {
		d.MustCLI(t, "model", "add", "--path", p)
	}
	names := map[string]string{"hf": "hf-model", "gguf": "gguf-model", "gemma4": "gemma4-model", "bad": "bad-magic"}
	cases := []struct {
		engine, model, fail string
		line, kind, suggest string
	}{
		{"vllm", "hf", "kv-none", "ValueError: No available memory for the cache blocks", "exited", "--max-model-len"},
		{"vllm", "hf", "port-in-use", "OSError: [Errno 98] Address already in use", "port_in_use", ""},
		{"sglang", "hf", "kv-none", "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static", "exited", "raise --mem-fraction-static"},
		{"sglang", "hf", "oom-load", "torch.OutOfMemoryError: CUDA out of memory", "exited", "--tp-size"},
		{"sglang", "hf", "model-missing", "OSError: Can't load the configuration of", "exited", "--model-path"},
		{"sglang", "hf", "port-in-use", "[Errno 98] error while attempting to bind on address", "port_in_use", ""},
		{"llamacpp", "gguf", "oom-load", "llama_model_load: error loading model: unable to allocate CUDA0 buffer", "exited", "-ngl"},
		{"llamacpp", "gguf", "kv-none", "failed to allocate buffer for kv cache", "exited", "lower -c"},
		{"llamacpp", "gguf", "model-missing", "gguf_init_from_file: failed to open GGUF file", "exited", "-m must name"},
		{"llamacpp", "bad", "", "gguf_init_from_file_impl: invalid magic characters: 'xxxx', expected 'GGUF'", "exited", "not a GGUF file"},
		{"llamacpp", "gemma4", "", "unknown model architecture: 'gemma4'", "exited", "newer llama.cpp"},
		{"llamacpp", "gguf", "port-in-use", "couldn't bind HTTP server socket", "port_in_use", ""},
	}
	for i, tc := range cases {
		name := fmt.Sprintf("%s-%s-%s", tc.engine, tc.model, tc.fail)
		t.Run(name, func(t *testing.T) {
			args := []string{"service", "create", "--model-id", names[tc.model], "--engine-type", tc.engine, "--name", fmt.Sprintf("fail-%d", i)}
			if tc.fail != "" {
				args = append(args, "--env", "SIM_FAIL="+tc.fail)
			}
			d.MustCLI(t, args...)
			svc := testenv.DecodeJSON[engineSvcJSON](t, d.MustCLI(t, "service", "status", fmt.Sprintf("fail-%d", i), "-o", "json").Stdout)
			testenv.RemoveContainersWithLabel(t, "aima.service", svc.ID)
			res := d.CLI(t, "service", "start", svc.ID, "--wait", "--timeout", "120")
			if res.Code == 0 {
				t.Fatalf("a failing start exited 0:\n%s", res.Stderr)
			}
			st := testenv.DecodeJSON[engineSvcJSON](t, d.MustCLI(t, "service", "status", svc.ID, "-o", "json").Stdout)
			t.Logf("%s: failure %s: %s", name, st.Failure, st.Reason)
			if st.Status != "failed" || st.Failure != tc.kind || st.ExitCode == nil || *st.ExitCode != 1 {
				t.Errorf("status %s, failure %q, exit %v; want failed, %q, 1 (reason %q)", st.Status, st.Failure, st.ExitCode, tc.kind, st.Reason)
			}
			if !strings.Contains(st.EngineError, tc.line) || !strings.Contains(st.Reason, tc.line) {
				t.Errorf("engine line %q / reason %q lack %q", st.EngineError, st.Reason, tc.line)
			}
			if tc.suggest != "" && (!strings.Contains(st.Reason, "suggestion: ") || !strings.Contains(st.Reason, tc.suggest)) {
				t.Errorf("reason %q lacks the suggestion with %q", st.Reason, tc.suggest)
			}
			if !strings.Contains(res.Stderr, tc.line) {
				t.Errorf("the CLI's start does not print the engine's line %q:\n%s", tc.line, res.Stderr)
			}
		})
	}
}

// assertInOrderText checks that each string occurs in text after the previous one.
func assertInOrderText(t *testing.T, text string, want []string) {
	t.Helper()
	pos := 0
	for _, w := range want {
		i := strings.Index(text[pos:], w)
		if i < 0 {
			t.Fatalf("missing (or out of order) %q in:\n%s", w, text)
		}
		pos += i + len(w)
	}
}

// figuresJSON is the part of service_metrics' answer the scenario reads.
type figuresJSON struct {
	ScrapeOK        bool     `json:"scrape_ok"`
	Error           string   `json:"error"`
	RequestsRunning *float64 `json:"requests_running"`
	KVCacheUsage    *float64 `json:"kv_cache_usage"`
	GenTotal        *float64 `json:"generation_tokens_total"`
}

// TestSGLangRunningOnlyWhenWarm: an SGLang build whose /health answers 200
// as soon as it listens (before its warmup generation) is running for aima
// only once it printed its fired-up line.
func TestSGLangRunningOnlyWhenWarm(t *testing.T) {
	testenv.RequireDocker(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{})})
	d.MustCLI(t, "model", "add", "--path", testenv.MakeModel(t, "warm-sglang"))
	// The warmup takes 3 s (60 s at SIM_TIME_SCALE 0.05) with /health 200 throughout.
	d.MustCLI(t, "service", "create", "--model-id", "warm-sglang", "--engine-type", "sglang", "--name", "warm",
		"--env", "SIM_LEGACY_HEALTH=1", "--env", "SIM_PHASE=warmup=60s")
	svc := testenv.DecodeJSON[engineSvcJSON](t, d.MustCLI(t, "service", "status", "warm", "-o", "json").Stdout)
	testenv.RemoveContainersWithLabel(t, "aima.service", svc.ID)
	start := d.MustCLI(t, "service", "start", svc.ID, "--wait", "--timeout", "120")
	logs := d.MustCLI(t, "service", "logs", svc.ID)
	if !strings.Contains(logs.Stdout, "The server is fired up and ready to roll!") {
		t.Errorf("running before SGLang's warmup ended (its /health said 200 early); start:\n%s\nlogs:\n%s", start.Stderr, logs.Stdout)
	}
	assertInOrderText(t, start.Stderr, []string{"server fired up", "==> health_check", "==> running"})
}
