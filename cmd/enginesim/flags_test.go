package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseServeDefaults(t *testing.T) {
	t.Parallel()
	o, err := parseServe(nil, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.Model != "Qwen/Qwen3-0.6B" || o.Port != 8000 || o.Host != "" || o.TP != 1 || o.GPUMemUtil != 0.9 {
		t.Errorf("vLLM defaults wrong: %+v", o)
	}
	if o.Startup != 20*time.Second || o.FailAfter != 30*time.Second || o.TimeScale != 1 || !o.ModelCheck || o.ExitCode != -1 || o.Fail != "" {
		t.Errorf("sim defaults wrong: %+v", o)
	}
	if got := o.displayHost(); got != "0.0.0.0" {
		t.Errorf("displayHost = %q", got)
	}
}

func TestParseServeFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		check func(*options) bool
	}{
		{"positional model", []string{"/models/x", "--port", "9000"}, func(o *options) bool { return o.Model == "/models/x" && o.Port == 9000 }},
		{"--model=", []string{"--model=/models/y"}, func(o *options) bool { return o.Model == "/models/y" }},
		{"served names nargs+ and repeat", []string{"--served-model-name", "a", "b", "--served-model-name=c"},
			func(o *options) bool { return reflect.DeepEqual(o.ServedNames, []string{"a", "b", "c"}) }},
		{"short -tp and underscores", []string{"-tp", "2", "--gpu_memory_utilization", "0.5"}, func(o *options) bool { return o.TP == 2 && o.GPUMemUtil == 0.5 }},
		{"max-model-len human", []string{"--max-model-len", "32k"}, func(o *options) bool { return o.MaxModelLen == 32000 }},
		{"max-model-len K", []string{"--max-model-len=4K"}, func(o *options) bool { return o.MaxModelLen == 4096 }},
		{"unknown flag with value", []string{"--kv-cache-dtype", "fp8", "/m"}, func(o *options) bool { return o.Model == "/m" }},
		{"unknown boolean keeps positional", []string{"--trust-remote-code", "/m", "--enable-prefix-caching", "--no-enable-log-requests"},
			func(o *options) bool { return o.Model == "/m" }},
		{"unknown flag at end", []string{"/m", "--some-new-flag"}, func(o *options) bool { return o.Model == "/m" }},
		{"known booleans", []string{"--enforce-eager", "--disable-uvicorn-access-log", "--disable-log-stats"},
			func(o *options) bool { return o.EnforceEager && o.DisableAccessLog && o.DisableLogStats }},
		{"negative number value", []string{"--seed", "-1", "/m"}, func(o *options) bool { return o.Model == "/m" }},
		{"compilation -O3", []string{"-O3", "/m"}, func(o *options) bool { return o.Model == "/m" }},
		{"sim flags", []string{"--sim-fail", "kv-none", "--sim-startup", "5s", "--sim-fail-after=2", "--sim-time-scale", "0.01",
			"--sim-exit-code", "7", "--sim-model-check", "off", "--sim-phase", "load=8s,compile=1m"},
			func(o *options) bool {
				return o.Fail == "kv-none" && o.Startup == 5*time.Second && o.FailAfter == 2*time.Second &&
					o.TimeScale == 0.01 && o.ExitCode == 7 && !o.ModelCheck &&
					o.PhaseOverride["load"] == 8*time.Second && o.PhaseOverride["compile"] == time.Minute
			}},
		{"api key flag", []string{"--api-key", "k"}, func(o *options) bool { return o.APIKey == "k" }},
		{"ipv6 host", []string{"--host", "::"}, func(o *options) bool { return o.displayHost() == "[::]" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseServe(tc.args, envMap(nil))
			if err != nil {
				t.Fatalf("parseServe(%q): %v", tc.args, err)
			}
			if !tc.check(o) {
				t.Errorf("parseServe(%q) = %+v", tc.args, o)
			}
		})
	}
}

func TestParseServeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--model", "/m"}, "vllm: error: unrecognized arguments: serve"},
		{[]string{"/m", "extra"}, "vllm: error: unrecognized arguments: extra"},
		{[]string{"vllm", "serve", "/m"}, "vllm: error: unrecognized arguments: serve /m"},
		{[]string{"--port", "abc"}, "vllm serve: error: argument --port: invalid int value: 'abc'"},
		{[]string{"--port"}, "vllm serve: error: argument --port: expected one argument"},
		{[]string{"--served-model-name", "--port", "1"}, "vllm serve: error: argument --served-model-name: expected at least one argument"},
		{[]string{"--dtype", "int3"}, "argument --dtype: invalid choice: 'int3'"},
		{[]string{"--enforce-eager=yes"}, "argument --enforce-eager: ignored explicit argument 'yes'"},
		{[]string{"--sim-fail", "bogus"}, "argument --sim-fail: invalid choice: 'bogus'"},
		{[]string{"--sim-bogus", "1"}, "unrecognized arguments: --sim-bogus"},
		{[]string{"-x"}, "unrecognized arguments: -x"},
		{[]string{"--sim-time-scale", "-1"}, "argument --sim-time-scale: invalid float value"},
		{[]string{"--sim-startup", "soon"}, "argument --sim-startup: invalid duration value: 'soon'"},
		{[]string{"--sim-phase", "warp=1s"}, "invalid phase override"},
	}
	for _, tc := range tests {
		_, err := parseServe(tc.args, envMap(nil))
		var ae *argError
		if !errors.As(err, &ae) {
			t.Errorf("parseServe(%q) error = %v, want argError", tc.args, err)
			continue
		}
		if !strings.Contains(ae.Error(), tc.want) {
			t.Errorf("parseServe(%q) = %q, want it to contain %q", tc.args, ae.Error(), tc.want)
		}
	}
	if _, err := parseServe([]string{"--help"}, envMap(nil)); !errors.Is(err, errHelp) {
		t.Errorf("--help: %v", err)
	}
}

func TestSimEnvFallback(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SIM_FAIL": "crash-after", "SIM_STARTUP": "3s", "SIM_FAIL_AFTER": "1.5", "SIM_TIME_SCALE": "0.1",
		"SIM_EXIT_CODE": "9", "SIM_MODEL_CHECK": "off", "VLLM_API_KEY": "envkey", "SIM_GPU_MEM": "24GiB",
	}
	o, err := parseServe([]string{"/m"}, envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	if o.Fail != "crash-after" || o.Startup != 3*time.Second || o.FailAfter != 1500*time.Millisecond ||
		o.TimeScale != 0.1 || o.ExitCode != 9 || o.ModelCheck || o.APIKey != "envkey" || o.GPUMemGiB != 24 {
		t.Errorf("env not applied: %+v", o)
	}
	// Flags win over env.
	o, err = parseServe([]string{"/m", "--sim-fail", "hang", "--sim-time-scale", "2", "--api-key", "flagkey", "--sim-model-check", "on"}, envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	if o.Fail != "hang" || o.TimeScale != 2 || o.APIKey != "flagkey" || !o.ModelCheck || o.Startup != 3*time.Second {
		t.Errorf("flag should win: %+v", o)
	}
	// A bad env value is a usage error, not silently ignored.
	_, err = parseServe(nil, envMap(map[string]string{"SIM_TIME_SCALE": "fast"}))
	var ae *argError
	if !errors.As(err, &ae) || !strings.Contains(ae.msg, "SIM_TIME_SCALE") {
		t.Errorf("bad env: %v", err)
	}
	// "none" clears a failure.
	if o, err := parseServe(nil, envMap(map[string]string{"SIM_FAIL": "none"})); err != nil || o.Fail != "" {
		t.Errorf("SIM_FAIL=none: %v %+v", err, o)
	}
}

func TestNonDefaultArgs(t *testing.T) {
	t.Parallel()
	o, err := parseServe([]string{"/models/m1", "--port", "8001", "--served-model-name", "qwen", "--tensor-parallel-size", "1",
		"--gpu-memory-utilization", "0.5", "--kv-cache-dtype", "fp8", "--sim-fail", "hang", "--host", "0.0.0.0", "--api-key", "secret"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := "{'model_tag': '/models/m1', 'host': '0.0.0.0', 'port': 8001, 'api_key': '<redacted>', 'model': '/models/m1', " +
		"'served_model_name': ['qwen'], 'gpu_memory_utilization': 0.5, 'kv_cache_dtype': 'fp8'}"
	if got := pyDict(o.nonDefault); got != want {
		t.Errorf("non-default args\n got %s\nwant %s", got, want)
	}
}

func TestParseHelpers(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"20s": 20 * time.Second, "20": 20 * time.Second, "0.5": 500 * time.Millisecond, "1m30s": 90 * time.Second} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]int{"32768": 32768, "32k": 32000, "32K": 32768, "1m": 1000000, "1M": 1 << 20} {
		if got, err := parseHumanInt(in); err != nil || got != want {
			t.Errorf("parseHumanInt(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got := commas(1587648); got != "1,587,648" {
		t.Errorf("commas = %q", got)
	}
	o := defaultOptions()
	o.TimeScale = 0.01
	var total time.Duration
	for _, p := range phases {
		total += o.phaseDuration(p.name)
	}
	if total < 199*time.Millisecond || total > 201*time.Millisecond {
		t.Errorf("phases at scale 0.01 sum to %v, want 200ms", total)
	}
}
