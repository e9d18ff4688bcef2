package engines

import (
	"testing"

	"aima/errs"
	"aima/settings"
)

func TestBuiltinCatalog(t *testing.T) {
	c, err := NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"vllm", "sglang", "llamacpp"} {
		e, err := c.Get(typ)
		if err != nil || e.Image == "" || e.Port == 0 || e.HealthPath == "" || e.ModelArgs == nil {
			t.Errorf("%s: %+v, %v", typ, e, err)
		}
	}
	v, _ := c.Get("vllm")
	if v.Port != 8000 || v.GPUs != "auto" || v.HealthPath != "/health" {
		t.Errorf("vllm defaults: %+v", v)
	}
	args := v.ModelArgs("/models/m", "qwen", 8000)
	if args[0] != "--model" || args[1] != "/models/m" {
		t.Errorf("vllm args put the model first as --model: %v", args)
	}
	if _, err := c.Get("tgi"); errs.FieldOf(err) != "engine_type" {
		t.Errorf("unknown engine: %v", err)
	}
}

func TestOverrides(t *testing.T) {
	c, err := NewCatalog(map[string]settings.EngineOverride{"vllm": {Image: "aima-enginesim:dev", GPUs: "none", Args: []string{"--max-num-seqs=8"}, Env: map[string]string{"A": "1"}, MemoryLimitMiB: 96}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := c.Get("vllm")
	if v.Image != "aima-enginesim:dev" || v.GPUs != "none" || len(v.Args) != 1 || v.Env["A"] != "1" || v.MemoryLimit != 96<<20 {
		t.Fatalf("override not applied: %+v", v)
	}
	for name, o := range map[string]map[string]settings.EngineOverride{
		"unknown engine": {"tgi": {Image: "x"}},
		"bad gpus":       {"vllm": {GPUs: "two"}},
		"negative limit": {"vllm": {MemoryLimitMiB: -1}},
	} {
		if _, err := NewCatalog(o); errs.KindOf(err) != errs.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
}
