package services

import (
	"fmt"
	"strings"
	"testing"

	"aima/engines"
	"aima/errs"
)

func TestValidateArgs(t *testing.T) {
	t.Parallel()
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	tests := []struct {
		name      string
		args, env []string
		wantField string // "" means valid
	}{
		{name: "nothing", wantField: ""},
		{name: "ordinary engine args", args: []string{"--max-model-len=8192", "--gpu-memory-utilization", "0.8", "--enforce-eager"}, env: []string{"HF_TOKEN=abc", "VLLM_LOGGING_LEVEL=DEBUG", "EMPTY="}, wantField: ""},
		{name: "value with =", env: []string{"A=b=c"}, wantField: ""},
		{name: "max args", args: many(maxArgs, func(i int) string { return fmt.Sprintf("--a%d", i) }), wantField: ""},
		{name: "max env", env: many(maxEnv, func(i int) string { return fmt.Sprintf("K%d=v", i) }), wantField: ""},
		{name: "arg of max length", args: []string{strings.Repeat("a", maxArgLen)}, wantField: ""},
		// Engine args reach the engine's command line, never Docker: Docker
		// flags are just unknown engine flags (the engine rejects them).
		{name: "docker flags are engine args", args: []string{"--privileged", "--cap-add=SYS_ADMIN", "--volume=/:/host", "--network=host"}, wantField: ""},
		{name: "managed-flag lookalikes", args: []string{"--port-range", "--hostname=x", "--model-len", "--max-model-len=4096"}, wantField: ""},
		{name: "a value that looks like a managed flag", args: []string{"--chat-template", "--port"}, wantField: "args"},
		{name: "CUDA_VISIBLE_DEVICES only narrows", env: []string{"CUDA_VISIBLE_DEVICES=0"}, wantField: ""},

		{name: "--port", args: []string{"--port", "9000"}, wantField: "args"},
		{name: "--port=", args: []string{"--port=9000"}, wantField: "args"},
		{name: "--host", args: []string{"--host=127.0.0.1"}, wantField: "args"},
		{name: "--model", args: []string{"--max-model-len=4096", "--model", "/other"}, wantField: "args"},
		{name: "--served_model_name", args: []string{"--served_model_name=x"}, wantField: "args"},
		{name: "--trust-remote-code", args: []string{"--trust-remote-code"}, wantField: "args"},
		{name: "--trust_remote_code=true", args: []string{"--trust_remote_code=true"}, wantField: "args"},
		{name: "NVIDIA_VISIBLE_DEVICES", env: []string{"NVIDIA_VISIBLE_DEVICES=all"}, wantField: "env"},
		{name: "nvidia_driver_capabilities", env: []string{"nvidia_driver_capabilities=all"}, wantField: "env"},
		{name: "too many args", args: many(maxArgs+1, func(i int) string { return "--x" }), wantField: "args"},
		{name: "arg too long", args: []string{strings.Repeat("a", maxArgLen+1)}, wantField: "args"},
		{name: "arg with NUL", args: []string{"--a\x00b"}, wantField: "args"},

		{name: "env without =", env: []string{"HF_TOKEN"}, wantField: "env"},
		{name: "env empty key", env: []string{"=value"}, wantField: "env"},
		{name: "env key starts with digit", env: []string{"1ABC=x"}, wantField: "env"},
		{name: "env key with dash", env: []string{"MY-VAR=x"}, wantField: "env"},
		{name: "env key with space", env: []string{"MY VAR=x"}, wantField: "env"},
		{name: "env empty entry", env: []string{""}, wantField: "env"},
		{name: "env with NUL", env: []string{"A=b\x00c"}, wantField: "env"},
		{name: "env too long", env: []string{"A=" + strings.Repeat("v", maxArgLen)}, wantField: "env"},
		{name: "too many env", env: many(maxEnv+1, func(i int) string { return fmt.Sprintf("K%d=v", i) }), wantField: "env"},
		{name: "bad args reported before bad env", args: []string{"--port=1"}, env: []string{"bad"}, wantField: "args"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := validateArgs(vllm(t), tc.args, tc.env, false)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("validateArgs: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validateArgs: nil, want an error on %s", tc.wantField)
			}
			if k := errs.KindOf(err); k != errs.InvalidArgument {
				t.Errorf("kind = %s, want invalid_argument", k)
			}
			if f := errs.FieldOf(err); f != tc.wantField {
				t.Errorf("field = %q, want %q (%v)", f, tc.wantField, err)
			}
		})
	}
}

func vllm(t *testing.T) engines.Engine {
	t.Helper()
	c, err := engines.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Get("vllm")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestValidateArgsMessageNamesArg(t *testing.T) {
	t.Parallel()
	err := validateArgs(vllm(t), []string{"--port=9000"}, nil, false)
	if err == nil || !strings.Contains(err.Error(), "--port=9000") {
		t.Fatalf("validateArgs(--port=9000) = %v, want a message naming the arg", err)
	}
}

// The config's allow_privileged_args lifts only the privilege check: the
// managed flags stay refused.
func TestValidateArgsAllowPrivileged(t *testing.T) {
	if err := validateArgs(vllm(t), []string{"--trust-remote-code"}, []string{"NVIDIA_VISIBLE_DEVICES=0"}, true); err != nil {
		t.Fatalf("with allow_privileged_args: %v", err)
	}
	if err := validateArgs(vllm(t), []string{"--port=1"}, nil, true); err == nil {
		t.Fatal("--port accepted with allow_privileged_args")
	}
	if err := validateArgs(vllm(t), nil, []string{"no-equals"}, true); err == nil {
		t.Fatal("bad env accepted with allow_privileged_args")
	}
}

// Each engine refuses its own spelling of the model and port flags.
func TestManagedFlagsPerEngine(t *testing.T) {
	c, err := engines.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	for typ, arg := range map[string]string{"vllm": "--model=x", "sglang": "--model-path=x", "llamacpp": "-m"} {
		e, _ := c.Get(typ)
		if err := validateArgs(e, []string{arg}, nil, false); errs.FieldOf(err) != "args" {
			t.Errorf("%s %s: %v, want refused", typ, arg, err)
		}
		// Every flag ModelArgs sets is managed.
		for _, a := range e.ModelArgs("m", "served", e.Port) {
			if strings.HasPrefix(a, "--") {
				if _, ok := e.ManagedFlag(a); !ok {
					t.Errorf("%s sets %s but does not manage it", typ, a)
				}
			}
		}
	}
}
