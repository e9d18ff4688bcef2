package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
)

func TestChoosePersonality(t *testing.T) {
	t.Parallel()
	tests := []struct {
		argv0 string
		args  []string
		want  string
		rest  []string
	}{
		{"enginesim", []string{"--model", "/m"}, engineVLLM, []string{"--model", "/m"}},
		{"enginesim", []string{"/m", "--port", "9"}, engineVLLM, []string{"/m", "--port", "9"}},
		{"enginesim", []string{"vllm", "serve", "/m"}, engineVLLM, []string{"/m"}},
		{"enginesim", []string{"--model", "/m.gguf"}, engineVLLM, []string{"--model", "/m.gguf"}}, // vLLM serves GGUF too
		{"enginesim", []string{"python3", "-m", "sglang.launch_server", "--model-path", "/m"}, engineSGLang, []string{"--model-path", "/m"}},
		{"enginesim", []string{"python", "-m", "sglang.launch_server", "--model-path", "/m"}, engineSGLang, []string{"--model-path", "/m"}},
		{"enginesim", []string{"sglang", "serve", "--model-path", "/m"}, engineSGLang, []string{"--model-path", "/m"}},
		{"enginesim", []string{"--model-path", "/m"}, engineSGLang, []string{"--model-path", "/m"}},
		{"enginesim", []string{"-m", "/m.gguf", "--port", "8080"}, engineLlamaCpp, []string{"-m", "/m.gguf", "--port", "8080"}},
		{"enginesim", []string{"--model", "/m.gguf", "-ngl", "99"}, engineLlamaCpp, []string{"--model", "/m.gguf", "-ngl", "99"}},
		{"enginesim", []string{"/app/llama-server", "-m", "/m.gguf"}, engineLlamaCpp, []string{"-m", "/m.gguf"}},
		{"/app/llama-server", []string{"--model", "/m.gguf"}, engineLlamaCpp, []string{"--model", "/m.gguf"}},
	}
	for _, tc := range tests {
		got, rest := choosePersonality(tc.argv0, tc.args)
		if got != tc.want || !reflect.DeepEqual(rest, tc.rest) {
			t.Errorf("choosePersonality(%q, %q) = %s %q, want %s %q", tc.argv0, tc.args, got, rest, tc.want, tc.rest)
		}
	}
}

func TestParseSGLangArgs(t *testing.T) {
	t.Parallel()
	o, err := parseEngineArgs(engineSGLang, []string{"--model-path", "/models/q", "--served-model-name", "q",
		"--host", "0.0.0.0", "--port", "30001", "--tp-size", "2", "--mem-fraction-static", "0.7", "--context-length", "8192",
		"--enable-metrics", "--enable-memory-saver", "--chunked-prefill-size", "4096", "--trust-remote-code"}, envMap(map[string]string{"SIM_FAIL": "kv-none"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Engine != engineSGLang || o.Model != "/models/q" || o.servedNames()[0] != "q" || o.Host != "0.0.0.0" || o.Port != 30001 ||
		o.TP != 2 || o.GPUMemUtil != 0.7 || o.MaxModelLen != 8192 || !o.Metrics || !o.EnableSleepMode || o.Fail != "kv-none" {
		t.Errorf("parsed %+v", o)
	}
	d, err := parseEngineArgs(engineSGLang, []string{"--model-path=/m"}, envMap(nil))
	if err != nil || d.Host != "127.0.0.1" || d.Port != 30000 || d.GPUMemUtil != 0.88 || d.Metrics || d.servedNames()[0] != "/m" {
		t.Errorf("defaults %+v %v", d, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "30000"}, "launch_server.py: error: the following arguments are required: --model-path"},
		{[]string{"--model-path", "/m", "extra"}, "launch_server.py: error: unrecognized arguments: extra"},
		{[]string{"--model-path", "/m", "--tp-size", "two"}, "launch_server.py: error: argument --tp-size: invalid int value: 'two'"},
		{[]string{"--model-path", "/m", "--mem-fraction-static"}, "launch_server.py: error: argument --mem-fraction-static: expected one argument"},
	} {
		_, err := parseEngineArgs(engineSGLang, tc.args, envMap(nil))
		var ae *argError
		if !errors.As(err, &ae) || ae.Error() != tc.want || ae.exitCode() != 2 {
			t.Errorf("%q: %v, want %q (exit 2)", tc.args, err, tc.want)
		}
	}
}

func TestParseLlamaArgs(t *testing.T) {
	t.Parallel()
	o, err := parseEngineArgs(engineLlamaCpp, []string{"-m", "/models/x.gguf", "--alias", "x", "--host", "0.0.0.0", "--port", "8081",
		"-ngl", "20", "-c", "8192", "-np", "4", "--metrics", "--embeddings", "-t", "8", "--no-mmap"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.Engine != engineLlamaCpp || o.Model != "/models/x.gguf" || o.servedNames()[0] != "x" || o.Port != 8081 || o.NGL != 20 ||
		o.MaxModelLen != 8192 || o.MaxNumSeqs != 4 || !o.Metrics || !o.Embeddings {
		t.Errorf("parsed %+v", o)
	}
	long, err := parseEngineArgs(engineLlamaCpp, []string{"--model=/x.gguf", "--n-gpu-layers=all", "--ctx-size", "2048", "--parallel", "2"}, envMap(nil))
	if err != nil || long.Model != "/x.gguf" || long.NGL != -1 || long.MaxModelLen != 2048 || long.MaxNumSeqs != 2 {
		t.Errorf("long spellings: %+v %v", long, err)
	}
	d, err := parseEngineArgs(engineLlamaCpp, nil, envMap(nil))
	if err != nil || d.Host != "127.0.0.1" || d.Port != 8080 || d.MaxModelLen != 4096 || d.MaxNumSeqs != 1 || d.NGL != -1 || d.Metrics {
		t.Errorf("defaults %+v %v", d, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"/x.gguf"}, "error: invalid argument: /x.gguf"},
		{[]string{"-m", "/x.gguf", "-ngl", "many"}, "error: argument -ngl: invalid value for -ngl: 'many'"},
		{[]string{"-m"}, "error: expected value for argument: -m"},
	} {
		_, err := parseEngineArgs(engineLlamaCpp, tc.args, envMap(nil))
		var ae *argError
		if !errors.As(err, &ae) || ae.Error() != tc.want || ae.exitCode() != 1 {
			t.Errorf("%q: %v, want %q (exit 1)", tc.args, err, tc.want)
		}
	}
}

// SIGTERM (a cancelled context) while loading exits 0 at once, with the
// port already open (llama-server) or not yet (SGLang); while serving, the
// engine's own shutdown lines are printed.
func TestPersonalitiesStopOnSignal(t *testing.T) {
	t.Parallel()
	gguf := testenv.MakeGGUF(t, "tiny", testenv.GGUFOptions{})
	for _, tc := range []struct {
		name, during, last string
		args               []string
	}{
		{"sglang loading", "Load weight begin.", "", sglangArgs0(modelDir(t), freePort(t), "--sim-phase", "load=1000s")},
		{"llama loading", "main: loading model", "", llamaArgs0(gguf, freePort(t), "--sim-phase", "load=1000s")},
		{"sglang serving", "fired up and ready to roll", "INFO:     Finished server process [", sglangArgs0(modelDir(t), freePort(t))},
		{"llama serving", "all slots are idle", "srv    operator(): operator(): cleaning up before exit...", llamaArgs0(gguf, freePort(t))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startSim(t, nil, tc.args...)
			if !r.err.waitFor(tc.during, 5*time.Second) {
				t.Fatalf("never reached %q:\n%s", tc.during, r.err)
			}
			r.cancel()
			if code := r.wait(t, 2*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM, want 0", code)
			}
			if tc.last != "" && !strings.Contains(r.err.String(), tc.last) {
				t.Errorf("no shutdown line %q:\n%s", tc.last, r.err)
			}
		})
	}
}

// crash-after takes SGLang (scheduler exception, exit 1) and llama-server
// (ggml's CUDA abort, exit 134) down with their own lines; wedge-after
// leaves the process up with SGLang's /health 503 and llama-server's still
// 200 (its HTTP thread answers while generation hangs).
func TestPersonalitiesAfterReady(t *testing.T) {
	t.Parallel()
	gguf := testenv.MakeGGUF(t, "tiny", testenv.GGUFOptions{})
	for _, tc := range []struct {
		name, line string
		code       int
		args       []string
	}{
		{"sglang", "RuntimeError: CUDA error: an illegal memory access was encountered", 1, sglangArgs0(modelDir(t), freePort(t), "--sim-fail", "crash-after", "--sim-fail-after", "1")},
		{"llama", "/app/ggml/src/ggml-cuda/ggml-cuda.cu:88: CUDA error", 134, llamaArgs0(gguf, freePort(t), "--sim-fail", "crash-after", "--sim-fail-after", "1")},
	} {
		t.Run("crash "+tc.name, func(t *testing.T) {
			t.Parallel()
			r := startSim(t, nil, tc.args...)
			if code := r.wait(t, 5*time.Second); code != tc.code || !strings.Contains(r.err.String(), tc.line) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.line, r.err)
			}
		})
	}
	t.Run("wedge", func(t *testing.T) {
		t.Parallel()
		sp, lp := freePort(t), freePort(t)
		sg := startSim(t, nil, sglangArgs0(modelDir(t), sp, "--sim-fail", "wedge-after", "--sim-fail-after", "0")...)
		ll := startSim(t, nil, llamaArgs0(gguf, lp, "--sim-fail", "wedge-after", "--sim-fail-after", "0")...)
		if !sg.err.waitFor("fired up", 5*time.Second) || !ll.err.waitFor("all slots are idle", 5*time.Second) {
			t.Fatal("never ready")
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/health", sp))
			if resp.StatusCode == 503 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("SGLang's /health never turned 503 when wedged")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if resp, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/health", lp)); resp.StatusCode != 200 {
			t.Errorf("llama-server /health when wedged = %d, want 200", resp.StatusCode)
		}
		if sg.exited() || ll.exited() {
			t.Error("a wedged engine exited")
		}
	})
}
