package services

import (
	"strings"
	"testing"
	"unicode/utf8"

	"aima/engines"
)

func TestReasonFromLogs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{
			name:  "empty input",
			lines: nil,
			want:  "",
		},
		{
			name:  "only blank lines",
			lines: []string{"", "   ", "\t"},
			want:  "",
		},
		{
			name: "invalid repository id (API server, before the engine)",
			lines: []string{
				"(APIServer pid=1) INFO 10-25 13:08:31 [api_server.py:1882] vLLM API server version 0.11.0",
				"(APIServer pid=1) INFO 10-25 13:08:31 [utils.py:328] non-default args: {'model_tag': '/models/missing', 'model': '/models/missing'}",
				"(APIServer pid=1) Traceback (most recent call last):",
				`(APIServer pid=1)   File "/usr/local/bin/vllm", line 10, in <module>`,
				"(APIServer pid=1)     sys.exit(main())",
				"(APIServer pid=1) ValueError: Invalid repository ID or local directory specified: '/models/missing'.",
				"(APIServer pid=1) Please verify the following requirements:",
				"(APIServer pid=1) 1. Provide a valid Hugging Face repository ID.",
				"(APIServer pid=1) 2. Specify a local directory that contains a recognized configuration file.",
				"(APIServer pid=1)    - For Hugging Face models: ensure the presence of a 'config.json'.",
				"(APIServer pid=1)    - For Mistral models: ensure the presence of a 'params.json'.",
				"",
			},
			want: "ValueError: Invalid repository ID or local directory specified: '/models/missing'.",
		},
		{
			name: "invalid repository id without process prefixes",
			lines: []string{
				"Traceback (most recent call last):",
				"ValueError: Invalid repository ID or local directory specified: 'org/nope'.",
				"Please verify the following requirements:",
				"1. Provide a valid Hugging Face repository ID.",
				"2. Specify a local directory that contains a recognized configuration file.",
				"   - For Hugging Face models: ensure the presence of a 'config.json'.",
				"   - For Mistral models: ensure the presence of a 'params.json'.",
			},
			want: "ValueError: Invalid repository ID or local directory specified: 'org/nope'.",
		},
		{
			name: "KV cache: root cause wins over the wrapper on the last line",
			lines: []string{
				"(EngineCore_DP0 pid=223840) INFO 10-25 13:08:40 [gpu_worker.py:348] Available KV cache memory: -1.20 GiB",
				"(EngineCore_DP0 pid=223840) ERROR 10-25 13:08:43 [core.py:708] EngineCore failed to start.",
				"(EngineCore_DP0 pid=223840) ERROR 10-25 13:08:43 [core.py:708] Traceback (most recent call last):",
				`(EngineCore_DP0 pid=223840) ERROR 10-25 13:08:43 [core.py:708]   File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 699, in run_engine_core`,
				"(EngineCore_DP0 pid=223840) ERROR 10-25 13:08:43 [core.py:708] ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
				"[rank0]:[W609 14:01:53.847994808 ProcessGroupNCCL.cpp:1554] Warning: WARNING: destroy_process_group() was not called before program exit, which can leak resources.",
				"(APIServer pid=1) Traceback (most recent call last):",
				`(APIServer pid=1)   File "/usr/local/bin/vllm", line 10, in <module>`,
				"(APIServer pid=1)     sys.exit(main())",
				`(APIServer pid=1)   File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/utils.py", line 889, in wait_for_engine_startup`,
				`(APIServer pid=1)     raise RuntimeError("Engine core initialization failed. "`,
				"(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
			},
			want: "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
		},
		{
			name: "wrapper with a named failed proc, and trailing blank lines",
			lines: []string{
				"(EngineCore_0 pid=13564) ERROR 08-12 01:42:40 [core.py:708] ValueError: To serve at least one request with the models's max seq len (131072), (4.11 GiB KV cache is needed, which is larger than the available KV cache memory (4.0 GiB).",
				"(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {'EngineCore_0': 1}",
				"",
				"  ",
			},
			want: "ValueError: To serve at least one request with the models's max seq len (131072), (4.11 GiB KV cache is needed, which is larger than the available KV cache memory (4.0 GiB).",
		},
		{
			name: "only the wrapper: it is the reason",
			lines: []string{
				"(APIServer pid=1) Traceback (most recent call last):",
				"(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
			},
			want: "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
		},
		{
			name: "torch.OutOfMemoryError during weight load",
			lines: []string{
				"(EngineCore_DP0 pid=441) INFO 11-24 11:43:50 [weight_utils.py:296] Using model weights format ['*.safetensors']",
				"(EngineCore_DP0 pid=441) ERROR 11-24 11:43:58 [core.py:708] EngineCore failed to start.",
				"(EngineCore_DP0 pid=441) ERROR 11-24 11:43:58 [core.py:708] Traceback (most recent call last):",
				"(EngineCore_DP0 pid=441) ERROR 11-24 11:43:58 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has a total capacity of 23.68 GiB of which 212.81 MiB is free.",
				"(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
			},
			want: "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has a total capacity of 23.68 GiB of which 212.81 MiB is free.",
		},
		{
			name:  "engine died while serving: the CUDA error, not the EngineDeadError that points at it",
			lines: engineDeadLines(),
			want:  "RuntimeError: CUDA error: an illegal memory access was encountered",
		},
		{
			name:  "a wrapper alone is still a reason",
			lines: engineDeadLines()[len(engineDeadLines())-1:],
			want:  "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.",
		},
		{
			name: "process and log prefixes are stripped",
			lines: []string{
				"(EngineCore_DP0 pid=441) ERROR 10-25 13:08:43 [core.py:708] ValueError: Free memory on device (59.32/79.15 GiB) on startup is less than desired GPU memory utilization (0.9, 71.24 GiB).",
			},
			want: "ValueError: Free memory on device (59.32/79.15 GiB) on startup is less than desired GPU memory utilization (0.9, 71.24 GiB).",
		},
		{
			name: "the last root cause wins over an earlier one",
			lines: []string{
				"ERROR 10-25 13:08:43 [core.py:708] ValueError: first",
				"(APIServer pid=1) TimeoutError: Timed out waiting for engines to send initial message on input socket.",
			},
			want: "TimeoutError: Timed out waiting for engines to send initial message on input socket.",
		},
		{
			name: "dotted exception class (huggingface_hub)",
			lines: []string{
				"(APIServer pid=1) huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or 'namespace/repo_name': '/app/bge_m3'. Use `repo_type` argument if needed.",
				"(APIServer pid=1) ",
			},
			want: "huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or 'namespace/repo_name': '/app/bge_m3'. Use `repo_type` argument if needed.",
		},
		{
			name: "no exception line: the last line that says error, as printed",
			lines: []string{
				"usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...",
				"vllm: error: unrecognized arguments: serve",
				"",
			},
			want: "vllm: error: unrecognized arguments: serve",
		},
		{
			name: "no exception line: a failed line with its prefixes",
			lines: []string{
				"(EngineCore_DP0 pid=223840) ERROR 10-25 13:08:43 [core.py:708] EngineCore failed to start.",
				"(APIServer pid=1) INFO:     Waiting for application startup.",
			},
			want: "(EngineCore_DP0 pid=223840) ERROR 10-25 13:08:43 [core.py:708] EngineCore failed to start.",
		},
		{
			name: "no exception line: a fatal line",
			lines: []string{
				"llama_model_load: fatal: cannot open model file",
				"main: exiting",
			},
			want: "llama_model_load: fatal: cannot open model file",
		},
		{
			name: "ordinary lines explain nothing",
			lines: []string{
				"(APIServer pid=1) INFO:     Started server process [1]",
				"(APIServer pid=1) INFO:     Waiting for application startup.",
				`(APIServer pid=1) INFO:     172.17.0.1:41774 - "GET /health HTTP/1.1" 200 OK`,
			},
			want: "",
		},
		{
			name: "a warning line is not an exception",
			lines: []string{
				"[rank0]:[W609 14:01:53.847994808 ProcessGroupNCCL.cpp:1554] Warning: WARNING: destroy_process_group() was not called before program exit",
			},
			want: "",
		},
		{
			name: "error as part of a word does not count",
			lines: []string{
				"INFO 10-25 13:08:43 [metrics.py:1] errors_total=0 failedover=false",
			},
			want: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ReasonFromLogs(tc.lines); got != tc.want {
				t.Errorf("ReasonFromLogs:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestReasonFromLogsTruncatesLongLastLine(t *testing.T) {
	t.Parallel()
	long := "error: " + strings.Repeat("x", 1000)
	got := ReasonFromLogs([]string{long})
	if !strings.HasPrefix(got, long[:300]) || len(got) > 300+len("…") {
		t.Fatalf("ReasonFromLogs(1007-byte error line) = %d bytes, want the first 300 plus an ellipsis", len(got))
	}
	if !utf8.ValidString(got) {
		t.Fatal("truncated reason is not valid UTF-8")
	}
}

// engineDeadLines is how vLLM logs an engine that dies while serving (as
// the simulator's crash-after mode prints it): the engine core's fatal
// error with its root cause, then the API server's EngineDeadError, which
// only points at it.
func engineDeadLines() []string {
	core := "(EngineCore_DP0 pid=7) ERROR 10-25 13:09:12 [core.py:710] "
	api := "(APIServer pid=1) ERROR 10-25 13:09:12 [async_llm.py:480] "
	return []string{
		`(APIServer pid=1) INFO:     127.0.0.1:41774 - "POST /v1/completions HTTP/1.1" 200 OK`,
		core + "EngineCore encountered a fatal error.",
		core + "Traceback (most recent call last):",
		core + `  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 701, in run_engine_core`,
		core + "    engine_core.run_busy_loop()",
		core + "RuntimeError: CUDA error: an illegal memory access was encountered",
		core + "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.",
		core + "For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
		api + "AsyncLLM output_handler failed.",
		api + "Traceback (most recent call last):",
		api + `  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core_client.py", line 846, in get_output_async`,
		api + "    raise self._format_exception(outputs) from None",
		api + "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.",
	}
}

// Each engine's failure line reaches the reason cleaned of its prefixes,
// by the engine's own rules (the root cause, never the wrapper after it).
func TestEngineFailureLine(t *testing.T) {
	t.Parallel()
	cat, err := engines.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		engine string
		lines  []string
		want   string
	}{
		{"sglang", []string{
			"[2025-01-01 10:00:05 TP0] Scheduler hit an exception: Traceback (most recent call last):",
			"RuntimeError: Not enough memory. Please try to increase --mem-fraction-static.",
			"[2025-01-01 10:00:05] Received sigquit from a child process. It usually means the child failed.",
		}, "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static."},
		{"sglang", []string{
			"[2025-01-01 10:00:14] ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 30000): address already in use",
		}, "ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 30000): address already in use"},
		{"llamacpp", []string{
			"ggml_backend_cuda_buffer_type_alloc_buffer: allocating 144817.04 MiB on device 0: cudaMalloc failed: out of memory",
			"llama_model_load: error loading model: unable to allocate CUDA0 buffer",
			"srv    load_model: failed to load model, '/models/x.gguf'",
			"main: exiting due to model loading error",
		}, "llama_model_load: error loading model: unable to allocate CUDA0 buffer"},
		{"llamacpp", []string{
			"gguf_init_from_file: failed to open GGUF file '/models/foo.gguf' (No such file or directory)",
			"main: exiting due to model loading error",
		}, "gguf_init_from_file: failed to open GGUF file '/models/foo.gguf' (No such file or directory)"},
		{"vllm", []string{
			"(EngineCore_DP0 pid=7) ERROR 10-25 13:08:43 [core.py:708] ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
			"(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
		}, "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."},
		{"vllm", []string{"(APIServer pid=1) ValueError: Invalid repository ID or local directory specified: '/m'."},
			"ValueError: Invalid repository ID or local directory specified: '/m'."},
	}
	for _, tc := range tests {
		e, _ := cat.Get(tc.engine)
		if got, _ := EngineFailureLine(e, tc.lines); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.engine, got, tc.want)
		}
	}
}
