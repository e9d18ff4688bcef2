package daemon

import (
	"time"

	"aima/config"
	"aima/engines"
	"aima/errs"
	"aima/inference"
	"aima/services"
)

// LoadConfig reads the config file as config.Load does (an empty path: the
// defaults; otherwise the file must exist) and applies its engines section
// to the engine catalog, which config does not import: a bad override is
// refused here, at load time like any other bad setting, as an
// InvalidArgument error on field config that names the file. Every command
// that reads the config (the daemon, the store commands) loads it here.
func LoadConfig(path string) (config.Config, *engines.Catalog, error) {
	cfg, err := config.Load(path, path != "")
	if err != nil {
		return cfg, nil, err
	}
	catalog, err := engines.NewCatalog(cfg.Engines)
	if err != nil {
		return cfg, nil, errs.Invalid("config", "config file %s: %v", path, err)
	}
	return cfg, catalog, nil
}

// managerOptions are the service manager's settings from the config, taken
// as config validated them (the port range as numbers, the GPU and on_oom
// policies in their canonical form); the rest are wired by New.
func managerOptions(cfg config.Config) services.Options {
	return services.Options{
		BindHost: cfg.BindHost, PortLow: cfg.PortRange.Low, PortHigh: cfg.PortRange.High,
		StartTimeout: time.Duration(cfg.StartTimeout), StopTimeout: time.Duration(cfg.StopTimeout),
		HealthInterval: time.Duration(cfg.HealthInterval), LivenessInterval: time.Duration(cfg.LivenessInterval),
		UnhealthyGrace: time.Duration(cfg.UnhealthyGrace), RestartBackoff: time.Duration(cfg.RestartBackoff),
		AllowPrivilegedArgs: cfg.AllowPrivilegedArgs, GPUAttach: cfg.GPUAttach, GPUPolicy: cfg.GPUPolicy, OnOOM: string(cfg.OnOOM),
	}
}

// gatewayOptions are the inference gateway's settings from the config's
// gateway section.
func gatewayOptions(cfg config.Config, readOnly bool) inference.Options {
	g := cfg.Gateway
	return inference.Options{MaxQueue: g.MaxQueue, MaxWait: time.Duration(g.MaxWait), MaxBody: g.MaxBody, ReadOnly: readOnly}
}
