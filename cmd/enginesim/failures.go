package main

import (
	"fmt"
	"strings"
	"time"
)

// This file holds vLLM's failure output (engines.md §3), verbatim where the
// reference quotes it. aima extracts the last `...Error: ...` line before
// exit as the failure reason, so each mode ends with the line vLLM ends with:
//
//	model-missing  ValueError: Invalid repository ID or local directory specified: '<model>'.
//	no-gpu         RuntimeError: Failed to infer device type, ...
//	port-in-use    OSError: [Errno 98] Address already in use
//	oom-load       RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
//	               (root cause above it: torch.OutOfMemoryError: CUDA out of memory. ...)
//	kv-none        RuntimeError: Engine core initialization failed. ... (root cause: ValueError: No available memory for the cache blocks. ...)
//	crash-after    vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. ...
//
// Tracebacks go to stderr, logger records (the engine's ERROR block) to stdout.

const (
	pyLib   = "/usr/local/lib/python3.12/dist-packages"
	vllmLib = pyLib + "/vllm"
)

// apiHead is the outer part of every API-server traceback: `vllm serve`
// running run_server under uvloop.
var apiHead = strings.Join([]string{
	"Traceback (most recent call last):",
	`  File "/usr/local/bin/vllm", line 10, in <module>`,
	"    sys.exit(main())",
	"             ^^^^^^",
	`  File "` + vllmLib + `/entrypoints/cli/main.py", line 54, in main`,
	"    args.dispatch_function(args)",
	`  File "` + vllmLib + `/entrypoints/cli/serve.py", line 57, in cmd`,
	"    uvloop.run(run_server(args))",
	`  File "` + pyLib + `/uvloop/__init__.py", line 109, in run`,
	"    return __asyncio.run(",
	"           ^^^^^^^^^^^^^^",
	`  File "/usr/lib/python3.12/asyncio/runners.py", line 195, in run`,
	"    return runner.run(main)",
	"           ^^^^^^^^^^^^^^^^",
	`  File "/usr/lib/python3.12/asyncio/runners.py", line 118, in run`,
	"    return self._loop.run_until_complete(task)",
	"           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
	`  File "uvloop/loop.pyx", line 1518, in uvloop.loop.Loop.run_until_complete`,
	`  File "` + pyLib + `/uvloop/__init__.py", line 61, in wrapper`,
	"    return await main",
	"           ^^^^^^^^^^",
}, "\n")

// apiEngineArgs continues apiHead into create_engine_config (config phase).
var apiEngineArgs = strings.Join([]string{
	`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 1884, in run_server`,
	"    await run_server_worker(listen_address, sock, args, **uvicorn_kwargs)",
	`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 1902, in run_server_worker`,
	"    async with build_async_engine_client(",
	`  File "/usr/lib/python3.12/contextlib.py", line 210, in __aenter__`,
	"    return await anext(self.gen)",
	"           ^^^^^^^^^^^^^^^^^^^^^",
	`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 180, in build_async_engine_client`,
	"    async with build_async_engine_client_from_engine_args(",
	`  File "/usr/lib/python3.12/contextlib.py", line 210, in __aenter__`,
	"    return await anext(self.gen)",
	"           ^^^^^^^^^^^^^^^^^^^^^",
	`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 206, in build_async_engine_client_from_engine_args`,
	"    vllm_config = engine_args.create_engine_config(usage_context=usage_context)",
	"                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
}, "\n")

// exitCode applies --sim-exit-code to a mode's natural exit code.
func (s *sim) exitCode(def int) int {
	if s.o.ExitCode >= 0 {
		return s.o.ExitCode
	}
	return def
}

// failModelMissing: get_config() finds neither config.json nor params.json
// (or the repo id is not cached and HF is offline).
func (s *sim) failModelMissing() int {
	m := s.o.Model
	s.log.stderr(procAPI, strings.Join([]string{
		"Traceback (most recent call last):",
		`  File "` + vllmLib + `/transformers_utils/config.py", line 480, in get_config`,
		"    raise ValueError(",
		"ValueError: Could not detect config format for no config file found. With config_format 'auto', ensure your model has either config.json (HF format) or params.json (Mistral format). Otherwise please specify your_custom_config_format in engine args for customized config format.",
		"",
		"The above exception was the direct cause of the following exception:",
		"",
		apiHead,
		apiEngineArgs,
		`  File "` + vllmLib + `/engine/arg_utils.py", line 1142, in create_engine_config`,
		"    model_config = self.create_model_config()",
		"                   ^^^^^^^^^^^^^^^^^^^^^^^^^^",
		`  File "` + vllmLib + `/engine/arg_utils.py", line 994, in create_model_config`,
		"    return ModelConfig(",
		"           ^^^^^^^^^^^^",
		`  File "` + vllmLib + `/config/model.py", line 419, in __post_init__`,
		"    hf_config = get_config(self.hf_config_path or self.model,",
		"                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
		`  File "` + vllmLib + `/transformers_utils/config.py", line 499, in get_config`,
		"    raise ValueError(error_message) from e",
		"ValueError: Invalid repository ID or local directory specified: '" + m + "'.",
		"Please verify the following requirements:",
		"1. Provide a valid Hugging Face repository ID.",
		"2. Specify a local directory that contains a recognized configuration file.",
		"   - For Hugging Face models: ensure the presence of a 'config.json'.",
		"   - For Mistral models: ensure the presence of a 'params.json'.",
		"",
	}, "\n"))
	return s.exitCode(1)
}

// failNoGPU: the container has no GPU (no --gpus), so DeviceConfig fails.
func (s *sim) failNoGPU() int {
	s.log.stderr(procAPI, strings.Join([]string{
		apiHead, apiEngineArgs,
		`  File "` + vllmLib + `/engine/arg_utils.py", line 1125, in create_engine_config`,
		"    device_config = DeviceConfig(",
		"                    ^^^^^^^^^^^^^",
		`  File "` + vllmLib + `/config/device.py", line 58, in __post_init__`,
		"    raise RuntimeError(",
		"RuntimeError: Failed to infer device type, please set the environment variable `VLLM_LOGGING_LEVEL=DEBUG` to turn on verbose logging to help debug the issue.",
	}, "\n"))
	return s.exitCode(1)
}

// failPortInUse: the early bind in setup_server() finds the port taken.
func (s *sim) failPortInUse() int {
	s.log.stderr(procAPI, strings.Join([]string{
		apiHead,
		`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 1870, in run_server`,
		"    listen_address, sock = setup_server(args)",
		"                           ^^^^^^^^^^^^^^^^^^",
		`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 1850, in setup_server`,
		"    sock = create_server_socket(sock_addr)",
		"           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
		`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 1811, in create_server_socket`,
		"    sock.bind(addr)",
		"OSError: [Errno 98] Address already in use",
	}, "\n"))
	return s.exitCode(1)
}

// failBind covers a port taken between the early check and the final
// listen; uvicorn reports it in its own words.
func (s *sim) failBind(err error) int {
	_ = err // uvicorn prints its own words, not Go's error
	s.log.uvicorn("ERROR", "[Errno 98] error while attempting to bind on address ('%s', %d): address already in use", firstNonEmpty(s.o.Host, "0.0.0.0"), s.o.Port)
	return s.exitCode(1)
}

// engineFrames are the EngineCore frames every start-up failure shares.
var engineFrames = []string{
	"Traceback (most recent call last):",
	`  File "` + vllmLib + `/v1/engine/core.py", line 699, in run_engine_core`,
	"    engine_core = EngineCoreProc(*args, **kwargs)",
	"                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
	`  File "` + vllmLib + `/v1/engine/core.py", line 498, in __init__`,
	"    super().__init__(vllm_config, executor_class, log_stats,",
}

// failEngineInit prints what a failing EngineCore start-up prints: the
// engine's ERROR log block (stdout), its process traceback (stderr), the
// NCCL teardown warning, then the API server's RuntimeError traceback.
func (s *sim) failEngineInit(frames []string, cause string) int {
	tb := strings.Join(append(append(append([]string{}, engineFrames...), frames...), cause), "\n")
	s.log.engine("ERROR", "core.py:708", "EngineCore failed to start.\n%s", tb)
	s.log.stderr(procEngine, "Process EngineCore_DP0:\n"+tb)
	now := time.Now()
	s.log.rawStderr(fmt.Sprintf("[rank0]:[W%s ProcessGroupNCCL.cpp:1538] Warning: WARNING: destroy_process_group() was not called before program exit, which can leak resources. For more info, please see https://pytorch.org/docs/stable/distributed.html#shutdown (function operator())\n",
		now.Format("0102 15:04:05.000000000")))
	s.log.stderr(procAPI, strings.Join([]string{
		apiHead,
		`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 1884, in run_server`,
		"    await run_server_worker(listen_address, sock, args, **uvicorn_kwargs)",
		`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 1902, in run_server_worker`,
		"    async with build_async_engine_client(",
		`  File "` + vllmLib + `/entrypoints/openai/api_server.py", line 225, in build_async_engine_client_from_engine_args`,
		"    async_llm = AsyncLLM.from_vllm_config(",
		"                ^^^^^^^^^^^^^^^^^^^^^^^^^^",
		`  File "` + vllmLib + `/v1/engine/async_llm.py", line 134, in __init__`,
		"    self.engine_core = EngineCoreClient.make_async_mp_client(",
		`  File "` + vllmLib + `/v1/engine/core_client.py", line 448, in __init__`,
		"    with launch_core_engines(vllm_config, executor_class,",
		`  File "/usr/lib/python3.12/contextlib.py", line 144, in __exit__`,
		"    next(self.gen)",
		`  File "` + vllmLib + `/v1/engine/utils.py", line 732, in launch_core_engines`,
		"    wait_for_engine_startup(",
		`  File "` + vllmLib + `/v1/engine/utils.py", line 785, in wait_for_engine_startup`,
		`    raise RuntimeError("Engine core initialization failed. "`,
		"RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
	}, "\n"))
	return s.exitCode(1)
}

// failOOMLoad: the weights do not fit on the GPU.
func (s *sim) failOOMLoad() int {
	total := s.o.GPUMemGiB * 0.9899
	return s.failEngineInit([]string{
		`  File "` + vllmLib + `/v1/executor/uniproc_executor.py", line 55, in _init_executor`,
		`    self.collective_rpc("load_model")`,
		`  File "` + vllmLib + `/v1/worker/gpu_worker.py", line 213, in load_model`,
		"    self.model_runner.load_model(eep_scale_up=eep_scale_up)",
		`  File "` + vllmLib + `/v1/worker/gpu_model_runner.py", line 2642, in load_model`,
		"    self.model = model_loader.load_model(",
		"                 ^^^^^^^^^^^^^^^^^^^^^^^^",
		`  File "` + vllmLib + `/model_executor/model_loader/base_loader.py", line 49, in load_model`,
		"    model = initialize_model(vllm_config=vllm_config,",
		`  File "` + pyLib + `/torch/utils/_device.py", line 104, in __torch_function__`,
		"    return func(*args, **kwargs)",
		"           ^^^^^^^^^^^^^^^^^^^^^",
	}, fmt.Sprintf("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has a total capacity of %.2f GiB of which 212.81 MiB is free. Including non-PyTorch memory, this process has %.2f GiB memory in use. Of the allocated memory %.2f GiB is allocated by PyTorch, and 52.19 MiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)",
		total, total-0.21, total-0.78))
}

// failKVNone: weights + activations leave nothing for the KV cache.
func (s *sim) failKVNone() int {
	return s.failEngineInit([]string{
		`  File "` + vllmLib + `/v1/engine/core.py", line 92, in __init__`,
		"    self._initialize_kv_caches(vllm_config)",
		`  File "` + vllmLib + `/v1/engine/core.py", line 199, in _initialize_kv_caches`,
		"    kv_cache_configs = get_kv_cache_configs(vllm_config, kv_cache_specs,",
		`  File "` + vllmLib + `/v1/core/kv_cache_utils.py", line 1243, in get_kv_cache_configs`,
		"    check_enough_kv_cache_memory(vllm_config, kv_cache_spec_one_worker,",
		`  File "` + vllmLib + `/v1/core/kv_cache_utils.py", line 700, in check_enough_kv_cache_memory`,
		`    raise ValueError("No available memory for the cache blocks. "`,
	}, "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.")
}

// logEngineDead prints a runtime engine death: the engine's fatal error,
// then the API server's EngineDeadError (both are logger records, stdout).
func (s *sim) logEngineDead() {
	s.log.engine("ERROR", "core.py:710", "%s", strings.Join([]string{
		"EngineCore encountered a fatal error.",
		"Traceback (most recent call last):",
		`  File "` + vllmLib + `/v1/engine/core.py", line 701, in run_engine_core`,
		"    engine_core.run_busy_loop()",
		`  File "` + vllmLib + `/v1/engine/core.py", line 728, in run_busy_loop`,
		"    self._process_engine_step()",
		`  File "` + vllmLib + `/v1/engine/core.py", line 754, in _process_engine_step`,
		"    outputs, model_executed = self.step_fn()",
		"                              ^^^^^^^^^^^^^^",
		`  File "` + vllmLib + `/v1/engine/core.py", line 284, in step`,
		"    model_output = self.execute_model_with_error_logging(",
		"RuntimeError: CUDA error: an illegal memory access was encountered",
		"CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.",
		"For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
		"Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.",
	}, "\n"))
	s.log.api("ERROR", "async_llm.py:480", "%s", strings.Join([]string{
		"AsyncLLM output_handler failed.",
		"Traceback (most recent call last):",
		`  File "` + vllmLib + `/v1/engine/async_llm.py", line 439, in output_handler`,
		"    outputs = await engine_core.get_output_async()",
		"              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
		`  File "` + vllmLib + `/v1/engine/core_client.py", line 846, in get_output_async`,
		"    raise self._format_exception(outputs) from None",
		"vllm.v1.engine.exceptions.EngineDeadError: " + engineDeadMsg,
	}, "\n"))
}

const engineDeadMsg = "EngineCore encountered an issue. See stack trace (above) for the root cause."

// logWedged is the periodic symptom of a hung engine: the API server's
// message-queue reader waits forever on the engine's shared memory.
func (s *sim) logWedged() {
	s.log.api("INFO", "shm_broadcast.py:466", "No available shared memory broadcast block found in 60 seconds. This typically happens when some processes are hanging or doing some time-consuming work (e.g. compilation, weight/kv cache quantization).")
}
