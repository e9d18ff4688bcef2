package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
)

func llamaArgs0(model string, port int, extra ...string) []string {
	return append([]string{"serve", "-m", model, "--alias", "tiny", "--host", "127.0.0.1", "--port", fmt.Sprint(port),
		"--sim-time-scale", fast}, extra...)
}

// llama-server listens at once, answers 503 "Loading model" on every route
// while it loads, and prints what the GGUF header says.
func TestLlamaHappyPath(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	model := testenv.MakeGGUF(t, "tiny", testenv.GGUFOptions{Layers: 22, Context: 2048})
	r := startSim(t, nil, llamaArgs0(model, port, "--metrics", "-c", "1024", "-np", "2", "--sim-phase", "load=300s")...)
	if !r.err.waitFor("main: loading model", 5*time.Second) {
		t.Fatalf("never listened:\n%s", r.err)
	}
	for _, path := range []string{"/health", "/v1/models", "/metrics"} {
		resp, body := get(t, base+path)
		if want := `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`; resp.StatusCode != 503 || body != want {
			t.Errorf("%s while loading = %d %s, want 503 %s", path, resp.StatusCode, body, want)
		}
	}
	if !r.err.waitFor("main: server is listening on", 10*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	assertInOrder(t, r.err.String(), []string{
		"build: 6900 ",
		"main: HTTP server is listening, hostname: 127.0.0.1, port: " + fmt.Sprint(port) + ", http threads: 15",
		"main: loading model",
		"srv    load_model: loading model '" + model + "'",
		"llama_model_loader: loaded meta data with 8 key-value pairs and 1 tensors from " + model + " (version GGUF V3 (latest))",
		"print_info: arch             = llama",
		"print_info: n_ctx_train      = 2048",
		"print_info: n_layer          = 22",
		"load_tensors: loading model tensors, this can take a while... (mmap = true)",
		"load_tensors: offloaded 23/23 layers to GPU",
		"load_tensors:        CUDA0 model buffer size = 0.02 MiB",
		"llama_context: n_ctx         = 1024",
		"llama_context: n_ctx_per_seq = 512",
		"llama_kv_cache: size = 22.00 MiB (1024 cells, 22 layers, 2/2 seqs)",
		"main: model loaded",
		"main: server is listening on http://127.0.0.1:" + fmt.Sprint(port) + " - starting the main loop",
	})
	if r.out.String() != "" {
		t.Errorf("llama-server logs to stderr; stdout has:\n%s", r.out)
	}
	if resp, body := get(t, base+"/health"); resp.StatusCode != 200 || body != `{"status":"ok"}` {
		t.Errorf("/health = %d %s", resp.StatusCode, body)
	}
	if _, body := get(t, base+"/props"); !strings.Contains(body, `"n_ctx":512`) || !strings.Contains(body, `"total_slots":2`) {
		t.Errorf("/props = %s", body)
	}
	if _, body := get(t, base+"/slots"); strings.Count(body, `"id":`) != 2 {
		t.Errorf("/slots = %s", body)
	}
	if resp, body := post(t, base+"/v1/chat/completions", `{"model":"any-name","messages":[{"role":"user","content":"hi you"}],"stream":true}`); resp.StatusCode != 200 || !strings.Contains(body, `" you"`) {
		t.Errorf("chat = %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, base+"/v1/embeddings", `{"input":"x"}`); resp.StatusCode != 501 || !strings.Contains(body, "Start it with `--embeddings`") {
		t.Errorf("embeddings without --embeddings = %d %s", resp.StatusCode, body)
	}
	if resp, body := get(t, base+"/nope"); resp.StatusCode != 404 || body != `{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}` {
		t.Errorf("unknown route = %d %s", resp.StatusCode, body)
	}
	_, body := get(t, base+"/metrics")
	for _, name := range []string{"llamacpp:prompt_tokens_total", "llamacpp:tokens_predicted_total 2", "llamacpp:prompt_tokens_seconds",
		"llamacpp:predicted_tokens_seconds", "llamacpp:kv_cache_usage_ratio", "llamacpp:kv_cache_tokens", "llamacpp:requests_processing 0",
		"llamacpp:requests_deferred 0"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s:\n%s", name, body)
		}
	}
	if !strings.Contains(r.err.String(), "srv  log_server_r: request: POST /v1/chat/completions 127.0.0.1 200") {
		t.Errorf("no request log line:\n%s", r.err)
	}
}

// -ngl moves layers, and the weights' share, to the GPU; --metrics is off by default.
func TestLlamaPartialOffloadAndNoMetrics(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	model := testenv.MakeGGUF(t, "tiny", testenv.GGUFOptions{Layers: 22, TensorElements: 23 * 1024 * 1024})
	r := startSim(t, nil, llamaArgs0(model, port, "-ngl", "10")...)
	if !r.err.waitFor("main: server is listening on", 5*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	for _, want := range []string{"load_tensors: offloading 10 repeating layers to GPU", "load_tensors: offloaded 10/23 layers to GPU",
		"CUDA0 model buffer size = 40.00 MiB", "CPU_Mapped model buffer size = 52.00 MiB"} {
		if !strings.Contains(r.err.String(), want) {
			t.Errorf("lacks %q:\n%s", want, r.err)
		}
	}
	resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if want := "{\"error\":{\"code\":501,\"message\":\"This server does not support metrics endpoint. Start it with `--metrics`\",\"type\":\"not_supported_error\"}}"; resp.StatusCode != 501 || body != want {
		t.Errorf("/metrics without --metrics = %d %s", resp.StatusCode, body)
	}
}

func TestLlamaFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.gguf")
	if err := os.WriteFile(bad, []byte("xxxx not a gguf file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := testenv.MakeGGUF(t, "tiny", testenv.GGUFOptions{})
	gemma4 := testenv.MakeGGUF(t, "g4", testenv.GGUFOptions{Arch: "gemma4"})
	missing := filepath.Join(dir, "foo.gguf")
	tests := []struct {
		name, model, mode string
		lines             []string
	}{
		{"missing file", missing, "", []string{"gguf_init_from_file: failed to open GGUF file '" + missing + "' (No such file or directory)"}},
		{"bad magic", bad, "", []string{"gguf_init_from_file_impl: invalid magic characters: 'xxxx', expected 'GGUF'"}},
		{"unknown architecture", gemma4, "", []string{"llama_model_loader: loaded meta data with 8 key-value pairs",
			"llama_model_load: error loading model: error loading model architecture: unknown model architecture: 'gemma4'"}},
		{"weights oom", good, "oom-load", []string{"load_tensors: offloaded 23/23 layers to GPU",
			"ggml_backend_cuda_buffer_type_alloc_buffer: allocating 0.02 MiB on device 0: cudaMalloc failed: out of memory",
			"alloc_tensor_range: failed to allocate CUDA0 buffer of size 16384",
			"llama_model_load: error loading model: unable to allocate CUDA0 buffer"}},
		{"kv oom", good, "kv-none", []string{"llama_context: n_ctx         = 4096",
			"llama_init_from_model: failed to initialize the context: failed to allocate buffer for kv cache"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := llamaArgs0(tc.model, freePort(t))
			if tc.mode != "" {
				args = append(args, "--sim-fail", tc.mode)
			}
			r := startSim(t, nil, args...)
			if code := r.wait(t, 5*time.Second); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			want := append(append([]string{"main: HTTP server is listening"}, tc.lines...), "main: exiting due to model loading error")
			assertInOrder(t, r.err.String(), want)
		})
	}
	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		port := freePort(t)
		r := startSim(t, nil, llamaArgs0(good, port, "--sim-fail", "port-in-use")...)
		if code := r.wait(t, 5*time.Second); code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		assertInOrder(t, r.err.String(), []string{"main: binding port with default address family",
			fmt.Sprintf("srv          start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: %d", port),
			"srv  llama_server: exiting due to HTTP server error"})
		if strings.Contains(r.err.String(), "loading model") {
			t.Errorf("llama-server binds before loading: nothing may load after a bind failure:\n%s", r.err)
		}
	})
}

// A hostile header (counts larger than the file could hold) is refused
// before anything is allocated for it.
func TestReadGGUFBounded(t *testing.T) {
	t.Parallel()
	b := testenv.GGUFBytes(testenv.GGUFOptions{})
	for i := 8; i < 16; i++ {
		b[i] = 0xff // tensor count 2^64-1
	}
	path := filepath.Join(t.TempDir(), "hostile.gguf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readGGUF(path); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("readGGUF(hostile) = %v", err)
	}
	info, err := readGGUF(testenv.MakeGGUF(t, "ok", testenv.GGUFOptions{Layers: 30, Context: 8192}))
	if err != nil || info.Arch != "llama" || info.Layers != 30 || info.CtxTrain != 8192 || info.KVHeads != 4 || info.HeadDim != 64 || info.WeightBytes != 16384 {
		t.Errorf("readGGUF = %+v, %v", info, err)
	}
}
