// Package config loads aima's YAML configuration file. Every setting has a
// default, so a missing file is fine; an unreadable or malformed one is an
// InvalidArgument error that names the file and the problem. It imports no
// domain package: it returns typed, validated values (durations, the port
// range as numbers, the GPU and on_oom policies of settings) that the daemon
// hands to the domain's options as they are. The engines section is the one
// the engine catalog checks (daemon.LoadConfig).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"aima/errs"
	"aima/runtime"
	"aima/settings"
)

// MaxFileSize caps the config file; a larger one is rejected, not read.
const MaxFileSize = 1 << 20

// Config is the whole file.
type Config struct {
	// Engines overrides the built-in engine catalog per engine type.
	Engines map[string]settings.EngineOverride `yaml:"engines"`
	// Store selects the state backend: bolt (default), memory, gokv-file,
	// or kubernetes (the API server of the kubernetes section).
	Store string `yaml:"store"`
	// BindHost is the host address engine ports are published on.
	BindHost string `yaml:"bind_host"`
	// PortRange is "LOW-HIGH", the host ports handed to services without --port.
	PortRange PortRange `yaml:"port_range"`
	// StartTimeout is the default deadline of a start when none is given.
	StartTimeout Duration `yaml:"start_timeout"`
	// StopTimeout is the grace between SIGTERM and SIGKILL on stop.
	StopTimeout Duration `yaml:"stop_timeout"`
	// HealthInterval is how often readiness is probed during a start.
	HealthInterval Duration `yaml:"health_interval"`
	// LivenessInterval is how often running services are health-probed.
	LivenessInterval Duration `yaml:"liveness_interval"`
	// UnhealthyGrace is how long a running service may fail its probe
	// (status unhealthy) before it is failed.
	UnhealthyGrace Duration `yaml:"unhealthy_grace"`
	// RestartBackoff is the first delay of the on-failure restart policy.
	RestartBackoff Duration `yaml:"restart_backoff"`
	// AllowPrivilegedArgs lets services pass engine args that run code
	// shipped with a model (--trust-remote-code) and env that the NVIDIA
	// container runtime reads on the host (NVIDIA_*), which are otherwise
	// rejected. Engine args never reach Docker.
	AllowPrivilegedArgs bool `yaml:"allow_privileged_args"`
	// GPUAttach is how leased GPUs reach containers: device_requests
	// (default; Docker's NVIDIA device request by UUID), cdi
	// (nvidia.com/gpu=<uuid>), or env (NVIDIA_VISIBLE_DEVICES only, for
	// hosts whose default Docker runtime is nvidia).
	GPUAttach runtime.GPUAttach `yaml:"gpu_attach"`
	// GPUPolicy is how N GPUs are picked: pack (default) or spread.
	GPUPolicy settings.GPUPolicy `yaml:"gpu_policy"`
	// OnOOM is the on_oom of services created without one: fail (default)
	// or retune (see docs/reference/gpus.md).
	OnOOM settings.OnOOM `yaml:"on_oom"`
	// NvidiaSMI is the nvidia-smi binary the inventory runs (default:
	// nvidia-smi on PATH; "off" disables the GPU inventory).
	NvidiaSMI string `yaml:"nvidia_smi"`
	// AllowedHosts are Host header values the daemon answers besides
	// loopback names and addresses: "name" (any port) or "name:port". Any
	// other Host is refused (DNS rebinding protection).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AllowedOrigins are browser origins ("https://dash.example:8443") that
	// may call the daemon and get CORS grants. Pages the daemon serves itself
	// are always allowed; every other Origin is refused.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Gateway bounds the OpenAI-compatible gateway under /v1.
	Gateway Gateway `yaml:"gateway"`
	// HTTP bounds the daemon's HTTP server (every route).
	HTTP HTTP `yaml:"http"`
	// Runtime runs the engines: docker (default) or kubernetes (one Pod
	// per start on the cluster of the kubernetes section).
	Runtime string `yaml:"runtime"`
	// Kubernetes is where and how the kubernetes runtime runs engine Pods.
	Kubernetes Kubernetes `yaml:"kubernetes"`
	// Cluster is aima as a cluster service: the store's name and leader
	// election among daemons sharing it.
	Cluster Cluster `yaml:"cluster"`
}

// HTTP is the config file's http section: what one client, or all of
// them, may hold of the daemon's HTTP server.
type HTTP struct {
	// IdleTimeout closes a keep-alive connection that sends no new request
	// for this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// BodyTimeout is how long a request, body included, may take to
	// arrive (answers, streams included, are not bounded by it).
	BodyTimeout Duration `yaml:"body_timeout"`
	// MaxConnections bounds the open connections in all; one more is
	// answered 503 and closed at once.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerClient bounds the open connections from one client
	// address (an IPv6 client: its /64); one more is answered 503 and
	// closed at once.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
}

// DefaultHTTP are the http section's defaults. The connection bounds are
// enough for browsers, CLIs following logs and a benchmark client with a
// few hundred concurrent /v1 requests on one address, far below what a
// flood would take (each connection holds a file descriptor, a goroutine
// and its buffers).
func DefaultHTTP() HTTP {
	return HTTP{IdleTimeout: Duration(2 * time.Minute), BodyTimeout: Duration(time.Minute), MaxConnections: 2048, MaxConnectionsPerClient: 512}
}

// Gateway is the config file's gateway section.
type Gateway struct {
	// MaxQueue is how many requests may wait for one service to start,
	// wake or be swapped in (more get 503 with Retry-After).
	MaxQueue int `yaml:"max_queue"`
	// MaxWait is how long a request waits for that (then 503 with
	// Retry-After; the start goes on).
	MaxWait Duration `yaml:"max_wait"`
	// MaxBody caps a request body in bytes (413 beyond).
	MaxBody int64 `yaml:"max_body"`
}

// Duration is a time.Duration that reads "90s" or "5m" from YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	// NaN fails the range check as written; infinity and values past
	// time.Duration's ~292 years would convert to a negative duration.
	if secs, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && secs >= 0 && secs <= maxDurationSeconds {
		*d = Duration(time.Duration(secs * float64(time.Second)))
		return nil
	}
	return fmt.Errorf("invalid duration %q (want e.g. 90s, 10m)", s)
}

// maxDurationSeconds is the longest duration a number of seconds may give.
const maxDurationSeconds = float64(math.MaxInt64 / int64(time.Second))

// Default returns the built-in settings. Those the domain's options also
// have take their defaults from settings, as services' and inference's
// DefaultOptions do.
func Default() Config {
	return Config{
		Gateway:          Gateway{MaxQueue: settings.GatewayMaxQueue, MaxWait: Duration(settings.GatewayMaxWait), MaxBody: settings.GatewayMaxBody},
		HTTP:             DefaultHTTP(),
		Store:            "bolt",
		BindHost:         settings.BindHost,
		PortRange:        PortRange{Low: settings.PortLow, High: settings.PortHigh},
		StartTimeout:     Duration(settings.StartTimeout),
		StopTimeout:      Duration(settings.StopTimeout),
		HealthInterval:   Duration(settings.HealthInterval),
		LivenessInterval: Duration(settings.LivenessInterval),
		UnhealthyGrace:   Duration(settings.UnhealthyGrace),
		RestartBackoff:   Duration(settings.RestartBackoff),
		GPUAttach:        runtime.GPUAttachDeviceRequests,
		GPUPolicy:        settings.GPUPolicyPack,
		Runtime:          RuntimeDocker,
		Kubernetes:       defaultKubernetes(),
		Cluster:          defaultCluster(),
	}
}

// Load reads path over the defaults. An empty path, or a path that does not
// exist when mustExist is false, yields the defaults.
func Load(path string, mustExist bool) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && !mustExist {
		return c, nil
	}
	if err != nil {
		return c, errs.Invalid("config", "config file %s: %v", path, err)
	}
	if st.Size() > MaxFileSize {
		return c, errs.Invalid("config", "config file %s is %d bytes; the limit is %d", path, st.Size(), MaxFileSize)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, errs.Invalid("config", "config file %s: %v", path, err)
	}
	if err := Parse(raw, &c); err != nil {
		return c, errs.Invalid("config", "config file %s: %v", path, err)
	}
	return c, nil
}

// Parse decodes YAML into c (over whatever c holds) and validates it.
// Unknown keys are errors, so a typo does not silently do nothing.
func Parse(raw []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return c.Validate()
}

// Validate checks the settings that can be checked without side effects
// and puts the enumerated ones in their canonical form ("" and fail for
// on_oom, "" for the GPU policy and attach mode's defaults), so their
// readers take them as they are. The engines section is left to the engine
// catalog (daemon.LoadConfig).
func (c *Config) Validate() error {
	if err := c.PortRange.check(c.PortRange.String()); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(c.BindHost); err != nil {
		return fmt.Errorf("bind_host %q: want an IP address of this host, e.g. 127.0.0.1 or 0.0.0.0 (engine ports are published on it)", c.BindHost)
	}
	switch c.Store {
	case "bolt", "memory", "gokv-file", StoreKubernetes:
	default:
		return fmt.Errorf("store %q: want bolt, memory, gokv-file or kubernetes", c.Store)
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	attach, err := runtime.ParseGPUAttach(string(c.GPUAttach))
	if err != nil {
		return err
	}
	policy, err := settings.ParseGPUPolicy(string(c.GPUPolicy))
	if err != nil {
		return err
	}
	onOOM, err := settings.ParseOnOOM(string(c.OnOOM))
	if err != nil {
		return err
	}
	c.GPUAttach, c.GPUPolicy, c.OnOOM = attach, policy, onOOM
	if err := c.validateRuntime(); err != nil {
		return err
	}
	if c.Gateway.MaxQueue <= 0 || c.Gateway.MaxWait <= 0 || c.Gateway.MaxBody <= 0 {
		return fmt.Errorf("gateway: max_queue, max_wait and max_body must be positive")
	}
	if c.HTTP.IdleTimeout <= 0 || c.HTTP.BodyTimeout <= 0 || c.HTTP.MaxConnections <= 0 || c.HTTP.MaxConnectionsPerClient <= 0 {
		return fmt.Errorf("http: idle_timeout, body_timeout, max_connections and max_connections_per_client must be positive")
	}
	for _, d := range []Duration{c.StartTimeout, c.StopTimeout, c.HealthInterval, c.LivenessInterval, c.UnhealthyGrace, c.RestartBackoff} {
		if time.Duration(d) <= 0 {
			return fmt.Errorf("durations (start_timeout, stop_timeout, health_interval, liveness_interval, unhealthy_grace, restart_backoff) must be positive")
		}
	}
	return nil
}

// PortRange is the host ports handed to services without --port, read
// from "LOW-HIGH".
type PortRange struct {
	Low, High int
}

// UnmarshalYAML parses "LOW-HIGH" within 1-65535.
func (p *PortRange) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	var r PortRange
	if m := portRangeRE.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		r.Low, _ = strconv.Atoi(m[1])
		r.High, _ = strconv.Atoi(m[2])
	}
	if err := r.check(s); err != nil {
		return err
	}
	*p = r
	return nil
}

// String is the range as the file writes it.
func (p PortRange) String() string { return fmt.Sprintf("%d-%d", p.Low, p.High) }

// check refuses a range outside 1-65535 or upside down, quoting the
// setting as written.
func (p PortRange) check(written string) error {
	if p.Low < 1 || p.High > 65535 || p.Low > p.High {
		return fmt.Errorf("port_range %q: want LOW-HIGH within 1-65535", written)
	}
	return nil
}

var portRangeRE = regexp.MustCompile(`^(\d{1,5})-(\d{1,5})$`)

// DefaultDataDir is ~/.aima.
func DefaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".aima"
	}
	return filepath.Join(home, ".aima")
}
