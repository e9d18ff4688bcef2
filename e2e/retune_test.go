package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"aima/internal/testenv"
	"aima/internal/testenv/fakesmi"
)

// retuneSvcJSON is the part of a service record a retune shows.
type retuneSvcJSON struct {
	engineSvcJSON
	Args    []string `json:"args"`
	OnOOM   string   `json:"on_oom"`
	Run     int      `json:"run"`
	Retunes []struct {
		Flag, From, To, Why, Cause string
		Run                        int
	} `json:"retunes"`
}

// TestRetuneAfterOutOfMemory starts each engine into each out-of-memory
// class whose figures aima reads, on the real Docker engine with the
// simulator computing the failure from its flags and memory figures: with
// --on-oom retune the start ends running after one retune, recorded on
// the service and in its events; weights that do not fit are not retried;
// without --on-oom the same start fails as before.
//
// The llama.cpp -ngl case runs on a second daemon with the fake
// nvidia-smi's GPU (24 GiB, 4 GiB held by another process): the retune
// computes the layers that fit from the engine's buffer size and the free
// memory the inventory reads after the failure, and the simulator is given
// the same figures (SIM_GPU_MEM, SIM_GPU_FREE).
func TestRetuneAfterOutOfMemory(t *testing.T) {
	testenv.RequireDocker(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{})})
	fake := testenv.FakeNvidiaSMI(t, fakesmi.Spec{GPUs: []fakesmi.GPU{{MemoryMiB: 24 << 10, UsedMiB: 4 << 10}}})
	dg := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.GPUConfig(t, fake, testenv.SimConfigOptions{})})
	gguf := testenv.MakeGGUF(t, "gguf-model", testenv.GGUFOptions{})
	d.MustCLI(t, "model", "add", "--path", testenv.MakeModel(t, "hf-model"))
	d.MustCLI(t, "model", "add", "--path", gguf)
	dg.MustCLI(t, "model", "add", "--path", gguf)
	cases := []struct {
		name, engine, model string
		args, env           []string
		onGPU               bool // on dg, with the fake GPU
		onOOM               bool
		flag, from, to      string   // the retune expected ("" = none; to "" = any other value)
		line                string   // the engine's line of the first failure
		whyHas              string   // in the retune's why
		previousLog         []string // lines of the failed run's log (service logs --previous)
		reasonHas           string   // for a failed end
	}{
		{name: "vllm-max-len", engine: "vllm", model: "hf-model", args: []string{"--max-model-len", "10000000"},
			env: []string{"SIM_GPU_MEM=24GiB", "SIM_MODEL_SIZE=16GiB"}, onOOM: true, flag: "--max-model-len", from: "10000000",
			line: "To serve at least one request with the models's max seq len (10000000)"},
		{name: "vllm-free-memory", engine: "vllm", model: "hf-model",
			env: []string{"SIM_GPU_FREE=40GiB", "SIM_MODEL_SIZE=8GiB"}, onOOM: true, flag: "--gpu-memory-utilization", from: "0.9",
			line: "Free memory on device (39.60/79.19 GiB) on startup is less than desired GPU memory utilization (0.9, 71.27 GiB)"},
		{name: "sglang-kv-pool", engine: "sglang", model: "hf-model", args: []string{"--mem-fraction-static", "0.85"},
			env: []string{"SIM_MODEL_SIZE=70GiB"}, onOOM: true, flag: "--mem-fraction-static", from: "0.85",
			line: "Not enough memory. Please try to increase --mem-fraction-static. Current value: mem_fraction_static=0.85"},
		{name: "llamacpp-context", engine: "llamacpp", model: "gguf-model", args: []string{"-c", "200000"},
			env: []string{"SIM_MODEL_SIZE=4GiB", "SIM_GPU_FREE=8GiB"}, onOOM: true, flag: "-c", from: "200000",
			line: "failed to allocate buffer for kv cache"},
		// 23 layers (22 and the output layer) of 40 GiB need 40960 MiB;
		// 20480 MiB is free: 23 × 0.9 × 20480 / 40960 = 10.35, so 10.
		{name: "llamacpp-gpu-layers", engine: "llamacpp", model: "gguf-model", onGPU: true,
			env: []string{"SIM_MODEL_SIZE=40GiB", "SIM_GPU_MEM=24GiB", "SIM_GPU_FREE=20GiB"}, onOOM: true, flag: "-ngl", from: "23", to: "10",
			line:   "llama_model_load: error loading model: unable to allocate CUDA0 buffer",
			whyHas: "23 layers need 40960.00 MiB on GPU 0 and 20480 MiB is free",
			previousLog: []string{"load_tensors: offloaded 23/23 layers to GPU",
				"ggml_backend_cuda_buffer_type_alloc_buffer: allocating 40960.00 MiB on device 0: cudaMalloc failed: out of memory",
				"alloc_tensor_range: failed to allocate CUDA0 buffer of size 42949672960"}},
		{name: "vllm-weights", engine: "vllm", model: "hf-model", env: []string{"SIM_MODEL_SIZE=100GiB"}, onOOM: true,
			reasonHas: "not retuned: the weights do not fit"},
		{name: "vllm-max-len-off", engine: "vllm", model: "hf-model", args: []string{"--max-model-len", "10000000"},
			env:       []string{"SIM_GPU_MEM=24GiB", "SIM_MODEL_SIZE=16GiB"},
			reasonHas: "To serve at least one request with the models's max seq len (10000000)"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := d
			if tc.onGPU {
				d = dg
			}
			name := fmt.Sprintf("oom-%d", i)
			args := []string{"service", "create", "--model-id", tc.model, "--engine-type", tc.engine, "--name", name}
			for _, a := range tc.args {
				args = append(args, "--arg="+a)
			}
			for _, e := range tc.env {
				args = append(args, "--env", e)
			}
			if tc.onOOM {
				args = append(args, "--on-oom", "retune")
			}
			d.MustCLI(t, args...)
			svc := testenv.DecodeJSON[retuneSvcJSON](t, d.MustCLI(t, "service", "status", name, "-o", "json").Stdout)
			testenv.RemoveContainersWithLabel(t, "aima.service", svc.ID)
			res := d.CLI(t, "service", "start", svc.ID, "--wait", "--timeout", "180")
			st := testenv.DecodeJSON[retuneSvcJSON](t, d.MustCLI(t, "service", "status", svc.ID, "-o", "json").Stdout)
			t.Logf("%s: %s %q retunes %+v args %q", tc.name, st.Status, st.Reason, st.Retunes, st.Args)
			if tc.flag == "" {
				if res.Code == 0 || st.Status != "failed" || len(st.Retunes) != 0 || !strings.Contains(st.Reason, tc.reasonHas) {
					t.Errorf("start exit %d, status %s, retunes %+v, reason %q; want failed without a retune, reason with %q", res.Code, st.Status, st.Retunes, st.Reason, tc.reasonHas)
				}
				if tc.name == "vllm-weights" && !strings.Contains(st.Reason, "larger GPU") {
					t.Errorf("reason %q does not suggest a larger GPU", st.Reason)
				}
				return
			}
			if res.Code != 0 || st.Status != "running" || len(st.Retunes) != 1 {
				t.Fatalf("start exit %d, status %s, retunes %+v; want running after one retune:\n%s", res.Code, st.Status, st.Retunes, res.Stderr)
			}
			r := st.Retunes[0]
			if r.Flag != tc.flag || (tc.from != "" && r.From != tc.from) || r.To == "" || r.To == r.From || r.Why == "" || r.Cause == "" ||
				(tc.to != "" && r.To != tc.to) || !strings.Contains(r.Why, tc.whyHas) {
				t.Errorf("retune %+v; want %s from %q to %q, why with %q", r, tc.flag, tc.from, tc.to, tc.whyHas)
			}
			if !slices.Contains(st.Args, tc.flag+"="+r.To) {
				t.Errorf("args %q do not carry %s %s", st.Args, tc.flag, r.To)
			}
			if !strings.Contains(res.Stderr, "retrying with "+tc.flag+" "+r.To) || !strings.Contains(res.Stderr, tc.line) {
				t.Errorf("the start's progress lacks the retune sentence or the engine's line %q:\n%s", tc.line, res.Stderr)
			}
			if len(tc.previousLog) > 0 {
				prev := d.MustCLI(t, "service", "logs", svc.ID, "--previous", "--tail", "-1").Stdout
				for _, l := range tc.previousLog {
					if !strings.Contains(prev, l) {
						t.Errorf("the failed run's log lacks %q:\n%s", l, prev)
					}
				}
			}
			ev := d.MustCLI(t, "service", "events", svc.ID).Stdout
			if !strings.Contains(ev, "retrying with "+tc.flag) {
				t.Errorf("the events lack the retune:\n%s", ev)
			}
			d.MustCLI(t, "service", "stop", svc.ID)
		})
	}
}
