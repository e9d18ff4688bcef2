package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// sglangReadyLines are SGLang's start-up lines in order (engines.md §4.5).
var sglangReadyLines = []string{
	"server_args=ServerArgs(model_path='",
	" TP0] Init torch distributed begin.",
	" TP0] Init torch distributed ends. elapsed=",
	" TP0] Load weight begin. avail mem=",
	" TP0] Load weight end. type=Qwen2ForCausalLM, dtype=torch.bfloat16, avail mem=",
	" TP0] KV Cache is allocated. #tokens: ",
	" TP0] Memory pool end. avail mem=",
	" TP0] Capture cuda graph begin. This can take up to several minutes. avail mem=",
	" TP0] Capture cuda graph end. Time elapsed: ",
	" TP0] max_total_num_tokens=",
	"] INFO:     Started server process [",
	"] INFO:     Waiting for application startup.",
	"] INFO:     Application startup complete.",
	"] INFO:     Uvicorn running on http://127.0.0.1:",
	"] The server is fired up and ready to roll!",
}

func sglangArgs0(dir string, port int, extra ...string) []string {
	return append([]string{"serve", "python3", "-m", "sglang.launch_server", "--model-path", dir, "--served-model-name", "qwen",
		"--port", fmt.Sprint(port), "--sim-time-scale", fast}, extra...)
}

func TestSGLangHappyPath(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := startSim(t, nil, sglangArgs0(modelDir(t), port, "--enable-metrics")...)
	if !r.err.waitFor("Uvicorn running on", 5*time.Second) {
		t.Fatalf("never bound:\n%s", r.err)
	}
	// The port opened only after loading: nothing listened before the
	// scheduler's last line (checked by a connect before that line, below).
	if !r.err.waitFor("fired up and ready to roll", 5*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	assertInOrder(t, r.err.String(), sglangReadyLines)
	if !strings.Contains(r.out.String(), `"GET /get_model_info HTTP/1.1" 200 OK`) || !strings.Contains(r.out.String(), `"POST /generate HTTP/1.1" 200 OK`) {
		t.Errorf("the warmup's access lines are missing from stdout:\n%s", r.out)
	}
	if resp, body := get(t, base+"/health"); resp.StatusCode != 200 || body != "" {
		t.Errorf("/health = %d %q", resp.StatusCode, body)
	}
	if _, body := get(t, base+"/get_model_info"); !strings.Contains(body, `"is_generation":true`) {
		t.Errorf("/get_model_info = %s", body)
	}
	if _, body := get(t, base+"/get_server_info"); !strings.Contains(body, `"mem_fraction_static":0.88`) {
		t.Errorf("/get_server_info = %s", body)
	}
	if _, body := get(t, base+"/v1/models"); !strings.Contains(body, `"id":"qwen"`) || !strings.Contains(body, `"owned_by":"sglang"`) {
		t.Errorf("/v1/models = %s", body)
	}
	resp, body := post(t, base+"/v1/chat/completions", `{"model":"qwen","messages":[{"role":"user","content":"Hello there"}],"stream":true}`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"content":" there"`) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("streamed chat = %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, base+"/v1/embeddings", `{"model":"qwen","input":["a","b"]}`); resp.StatusCode != 200 || strings.Count(body, `"object":"embedding"`) != 2 {
		t.Errorf("embeddings = %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, base+"/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`)
	if want := `{"error":{"code":"model_not_found","message":"The model 'nope' does not exist","param":"model","type":"invalid_request_error"}}`; resp.StatusCode != 404 || body != want {
		t.Errorf("unknown model = %d %s, want 404 %s", resp.StatusCode, body, want)
	}
	_, body = get(t, base+"/metrics")
	for _, name := range []string{"sglang:num_running_reqs", "sglang:num_used_tokens", "sglang:token_usage", "sglang:gen_throughput",
		"sglang:num_queue_reqs", "sglang:cache_hit_rate", "sglang:spec_accept_length", `sglang:generation_tokens_total{model_name="qwen"} 2.0`} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s:\n%s", name, body)
		}
	}
}

// SGLang refuses connections while loading, then answers /health 503
// until its warmup generation is done.
func TestSGLangPortAndWarmup(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// The warmup's generation comes 30% into the warmup phase (6 s at the
	// tests' time scale), leaving 14 s of warmup to check the health
	// endpoints in: a machine busy enough to delay the one delays both.
	r := startSim(t, nil, sglangArgs0(modelDir(t), port, "--sim-phase", "load=200s,warmup=2000s")...)
	if !r.err.waitFor("Load weight begin.", 5*time.Second) {
		t.Fatalf("never loaded:\n%s", r.err)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Fatal("the port accepted a connection while the weights loaded")
	}
	if !r.out.waitFor(`"POST /generate HTTP/1.1" 200 OK`, 30*time.Second) {
		t.Fatalf("no warmup:\n%s\n%s", r.err, r.out)
	}
	if resp, _ := get(t, base+"/health"); resp.StatusCode != 503 {
		t.Errorf("/health during warmup = %d, want 503", resp.StatusCode)
	}
	if resp, _ := get(t, base+"/health_generate"); resp.StatusCode != 503 {
		t.Errorf("/health_generate during warmup = %d, want 503", resp.StatusCode)
	}
	if strings.Contains(r.err.String(), "fired up") {
		t.Error("ready line before the end of the warmup")
	}
}

func TestSGLangFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode, line string
	}{
		{"model-missing", "OSError: Can't load the configuration of '"},
		{"oom-load", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 24.00 MiB. GPU 0 has a total capacity of 79.19 GiB"},
		{"kv-none", "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static. Current value: mem_fraction_static=0.88"},
		{"port-in-use", "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', "},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			r := startSim(t, nil, sglangArgs0(modelDir(t), port, "--sim-fail", tc.mode)...)
			if code := r.wait(t, 5*time.Second); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			text := r.err.String()
			if !strings.Contains(text, tc.line) {
				t.Errorf("lacks %q:\n%s", tc.line, text)
			}
			if tc.mode == "oom-load" || tc.mode == "kv-none" {
				assertInOrder(t, text, []string{" TP0] Scheduler hit an exception: Traceback (most recent call last):", tc.line,
					"] Received sigquit from a child process. It usually means the child failed."})
			}
			if tc.mode == "port-in-use" && !strings.Contains(text, "Capture cuda graph end") {
				t.Errorf("SGLang binds after loading: the bind failure must come after the CUDA graphs:\n%s", text)
			}
			if strings.Contains(text, "fired up") {
				t.Error("failed start-up reported ready")
			}
		})
	}
	// A model path that does not exist fails the same way without --sim-fail.
	r := startSim(t, nil, sglangArgs0("/nonexistent/model", freePort(t))...)
	if code := r.wait(t, 5*time.Second); code != 1 || !strings.Contains(r.err.String(), "OSError: Can't load the configuration of '/nonexistent/model'") {
		t.Errorf("missing model: exit %d\n%s", code, r.err)
	}
}

func TestSGLangMemoryOccupation(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := startSim(t, nil, sglangArgs0(modelDir(t), port, "--enable-memory-saver")...)
	if !r.err.waitFor("fired up and ready to roll", 5*time.Second) {
		t.Fatalf("never ready:\n%s", r.err)
	}
	if resp, _ := post(t, base+"/release_memory_occupation", `{}`); resp.StatusCode != 200 {
		t.Fatalf("release = %d", resp.StatusCode)
	}
	if !strings.Contains(r.err.String(), "Release memory occupation end. freed=") {
		t.Errorf("no release line:\n%s", r.err)
	}
	if resp, body := post(t, base+"/v1/completions", `{"model":"qwen","prompt":"x"}`); resp.StatusCode != 503 || !strings.Contains(body, `"object":"error"`) {
		t.Errorf("a request while released = %d %s", resp.StatusCode, body)
	}
	if resp, _ := post(t, base+"/resume_memory_occupation", `{}`); resp.StatusCode != 200 {
		t.Fatalf("resume = %d", resp.StatusCode)
	}
	if resp, _ := post(t, base+"/v1/completions", `{"model":"qwen","prompt":"x"}`); resp.StatusCode != 200 {
		t.Errorf("a request after resume = %d", resp.StatusCode)
	}
	// Without --metrics the route is not there at all.
	if resp, _ := get(t, base+"/metrics"); resp.StatusCode != 404 {
		t.Errorf("/metrics without --enable-metrics = %d, want 404", resp.StatusCode)
	}
}

// SIM_LEGACY_HEALTH=1 plays older SGLang builds: /health is 200 as soon
// as the server listens, before the warmup is done.
func TestSGLangLegacyHealth(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	r := startSim(t, map[string]string{"SIM_LEGACY_HEALTH": "1"}, sglangArgs0(modelDir(t), port, "--sim-phase", "warmup=1000s")...)
	if !r.out.waitFor(`"POST /generate HTTP/1.1" 200 OK`, 30*time.Second) {
		t.Fatalf("no warmup:\n%s", r.err)
	}
	if resp, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/health", port)); resp.StatusCode != 200 {
		t.Errorf("legacy /health during warmup = %d, want 200", resp.StatusCode)
	}
}
