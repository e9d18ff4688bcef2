// Package settings is what the config file shares with the domain, kept in
// a leaf so that config imports no domain package and each value has one
// source: the vocabularies of the enumerated settings that both read
// (gpu_policy, on_oom), the shape of an engine override (the config file's
// engines section, the catalog's input), and the default of every setting a
// domain package's options also have (config.Default and the DefaultOptions
// of services and inference are made of these constants).
package settings

import (
	"fmt"
	"time"
	"unicode/utf8"

	"aima/errs"
)

// The defaults of the settings the config file shares with the domain's
// options: services (ports, deadlines, probes) and inference (the gateway).
const (
	BindHost         = "127.0.0.1"
	PortLow          = 18000
	PortHigh         = 18999
	StartTimeout     = 20 * time.Minute
	StopTimeout      = 10 * time.Second
	HealthInterval   = 50 * time.Millisecond
	LivenessInterval = 5 * time.Second
	UnhealthyGrace   = 30 * time.Second
	RestartBackoff   = 10 * time.Second

	GatewayMaxQueue = 256
	GatewayMaxWait  = 10 * time.Minute
	GatewayMaxBody  = 32 << 20
)

// GPUPolicy is how aima picks N GPUs among those that fit: the config's
// gpu_policy, the service manager's option and gpu.Place's choice.
type GPUPolicy string

// The policies.
const (
	// GPUPolicyPack takes the GPUs with the least room that still fit, so
	// whole GPUs stay free for large models (the default).
	GPUPolicyPack GPUPolicy = "pack"
	// GPUPolicySpread takes the GPUs with the most room, spreading load.
	GPUPolicySpread GPUPolicy = "spread"
)

// ParseGPUPolicy validates a policy name ("" means pack).
func ParseGPUPolicy(s string) (GPUPolicy, error) {
	switch GPUPolicy(s) {
	case "", GPUPolicyPack:
		return GPUPolicyPack, nil
	case GPUPolicySpread:
		return GPUPolicySpread, nil
	}
	return "", fmt.Errorf("gpu_policy %q: want pack or spread", s)
}

// OnOOM is what a start that ran out of GPU memory does: the config's
// on_oom (the default of services created without one) and a service's own.
type OnOOM string

// The on_oom values as a service records them; "fail" is accepted as the
// explicit spelling of the default.
const (
	OnOOMFail   OnOOM = ""       // a memory failure fails the start (default)
	OnOOMRetune OnOOM = "retune" // retried with adjusted args (services/retune.go)
)

// ParseOnOOM validates an on_oom value: "" or fail (the start fails), or
// retune. It returns the value a record keeps.
func ParseOnOOM(v string) (OnOOM, error) {
	switch v {
	case "", "fail":
		return OnOOMFail, nil
	case string(OnOOMRetune):
		return OnOOMRetune, nil
	}
	if n := 40; len(v) > n { // the value may come from a request: quote a bounded part
		for n > 0 && !utf8.RuneStart(v[n]) {
			n--
		}
		v = v[:n] + "…"
	}
	return "", errs.Invalid("on_oom", "on_oom %q: want fail or retune", v)
}

// EngineOverride is the config file's per-engine section, which the
// engine catalog applies (engines.NewCatalog).
type EngineOverride struct {
	// Image replaces the engine's image (e.g. aima-enginesim:dev for the
	// simulator; default: the catalog's, e.g. vllm/vllm-openai).
	Image string `yaml:"image" json:"image,omitempty"`
	// GPUs is the engine's default GPU request: auto (the catalog's
	// default), all, none, N, or device=ID[,ID...].
	GPUs string `yaml:"gpus" json:"gpus,omitempty"`
	// Args are appended to the command line of every service of the engine.
	Args []string `yaml:"args" json:"args,omitempty"`
	// Env is added to the environment of every service of the engine.
	Env map[string]string `yaml:"env" json:"env,omitempty"`
	// MemoryLimitMiB caps each container's host memory, in MiB (default
	// 0: no limit); above it the kernel OOM-kills the engine.
	MemoryLimitMiB int64 `yaml:"memory_limit_mib" json:"memory_limit_mib,omitempty"`
}
