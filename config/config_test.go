package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/config"
	"aima/engines"
	"aima/errs"
	"aima/runtime"
	"aima/settings"
)

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if p := c.PortRange; p.Low != 18000 || p.High != 18999 || p.String() != "18000-18999" {
		t.Fatalf("Default().PortRange = %+v; want 18000-18999", p)
	}
}

func TestParseReadmeExample(t *testing.T) {
	t.Parallel()
	raw := "engines:\n  vllm:\n    image: aima-enginesim:dev\n    gpus: none\n"
	c := config.Default()
	if err := config.Parse([]byte(raw), &c); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := settings.EngineOverride{Image: "aima-enginesim:dev", GPUs: "none"}
	got, ok := c.Engines["vllm"]
	if !ok || len(c.Engines) != 1 || got.Image != want.Image || got.GPUs != want.GPUs || len(got.Args) != 0 || len(got.Env) != 0 {
		t.Fatalf("Engines = %+v, want only vllm: %+v", c.Engines, want)
	}
	// The rest keeps its defaults.
	d := config.Default()
	if c.Store != d.Store || c.BindHost != d.BindHost || c.PortRange != d.PortRange || c.StartTimeout != d.StartTimeout {
		t.Errorf("defaults changed: %+v", c)
	}
	// And the override reaches the catalog.
	cat, err := engines.NewCatalog(c.Engines)
	if err != nil {
		t.Fatalf("NewCatalog: %v", err)
	}
	e, err := cat.Get("vllm")
	if err != nil || e.Image != "aima-enginesim:dev" || e.GPUs != "none" {
		t.Fatalf("catalog vllm = %+v, %v", e, err)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string // substring; "" means valid
		check   func(t *testing.T, c config.Config)
	}{
		{name: "empty", yaml: ""},
		{name: "comments only", yaml: "# nothing\n"},
		{
			name: "kubernetes runtime",
			yaml: "runtime: kubernetes\nkubernetes:\n  kubeconfig: /k/config\n  context: lab\n  namespace: inference\n" +
				"  node_selector: {pool: gpu}\n  tolerations: [{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]\n" +
				"  service_account: aima-engine\n  models: {kind: pvc, claim: models}\n  endpoint: proxy\n",
			check: func(t *testing.T, c config.Config) {
				k := c.Kubernetes
				if c.Runtime != "kubernetes" || k.Kubeconfig != "/k/config" || k.Context != "lab" || k.Namespace != "inference" ||
					k.NodeSelector["pool"] != "gpu" || len(k.Tolerations) != 1 || k.Tolerations[0].Value != "ml" ||
					k.ServiceAccount != "aima-engine" || k.Models.Kind != "pvc" || k.Models.Claim != "models" || k.Models.MountPath != "/models" || k.Endpoint != "proxy" {
					t.Errorf("kubernetes = %q %+v", c.Runtime, k)
				}
			},
		},
		{
			// The enumerated settings come back in the form their readers
			// take as it is: the daemon parses none of them again.
			name: "enumerated settings in canonical form",
			yaml: "gpu_attach: \"\"\ngpu_policy: \"\"\non_oom: fail\n",
			check: func(t *testing.T, c config.Config) {
				if c.GPUAttach != runtime.GPUAttachDeviceRequests || c.GPUPolicy != settings.GPUPolicyPack || c.OnOOM != settings.OnOOMFail {
					t.Errorf("gpu_attach %q, gpu_policy %q, on_oom %q", c.GPUAttach, c.GPUPolicy, c.OnOOM)
				}
			},
		},
		{
			name: "enumerated settings set",
			yaml: "gpu_attach: cdi\ngpu_policy: spread\non_oom: retune\n",
			check: func(t *testing.T, c config.Config) {
				if c.GPUAttach != runtime.GPUAttachCDI || c.GPUPolicy != settings.GPUPolicySpread || c.OnOOM != settings.OnOOMRetune {
					t.Errorf("gpu_attach %q, gpu_policy %q, on_oom %q", c.GPUAttach, c.GPUPolicy, c.OnOOM)
				}
			},
		},
		{name: "bad gpu_attach", yaml: "gpu_attach: magic\n", wantErr: "gpu_attach"},
		{name: "bad gpu_policy", yaml: "gpu_policy: random\n", wantErr: "want pack or spread"},
		{name: "bad on_oom", yaml: "on_oom: ignore\n", wantErr: "want fail or retune"},
		{name: "port range with spaces", yaml: "port_range: \" 20000-20010 \"\n", check: func(t *testing.T, c config.Config) {
			if c.PortRange != (config.PortRange{Low: 20000, High: 20010}) {
				t.Errorf("port_range %+v", c.PortRange)
			}
		}},
		{name: "runtime unknown", yaml: "runtime: podman\n", wantErr: "want docker or kubernetes"},
		{name: "kubernetes pvc without claim", yaml: "runtime: kubernetes\nkubernetes: {models: {kind: pvc}}\n", wantErr: "needs claim"},
		{name: "kubernetes bad namespace", yaml: "runtime: kubernetes\nkubernetes: {namespace: Not_A_Name}\n", wantErr: "kubernetes.namespace"},
		{name: "kubernetes bad endpoint", yaml: "runtime: kubernetes\nkubernetes: {endpoint: nodeport}\n", wantErr: "want auto, pod_ip or proxy"},
		{
			name: "durations",
			yaml: "start_timeout: 90s\nstop_timeout: 5m\nhealth_interval: 250ms\n",
			check: func(t *testing.T, c config.Config) {
				if time.Duration(c.StartTimeout) != 90*time.Second || time.Duration(c.StopTimeout) != 5*time.Minute || time.Duration(c.HealthInterval) != 250*time.Millisecond {
					t.Errorf("durations = %v %v %v", time.Duration(c.StartTimeout), time.Duration(c.StopTimeout), time.Duration(c.HealthInterval))
				}
			},
		},
		{name: "duration of infinite seconds", yaml: "start_timeout: inf\n", wantErr: "invalid duration"},
		{name: "duration of NaN seconds", yaml: "stop_timeout: NaN\n", wantErr: "invalid duration"},
		{name: "duration past the int64 limit", yaml: "restart_backoff: 1e300\n", wantErr: "invalid duration"},
		{
			name: "duration as seconds",
			yaml: "start_timeout: 90\nstop_timeout: \"1.5\"\n",
			check: func(t *testing.T, c config.Config) {
				if time.Duration(c.StartTimeout) != 90*time.Second || time.Duration(c.StopTimeout) != 1500*time.Millisecond {
					t.Errorf("durations = %v %v", time.Duration(c.StartTimeout), time.Duration(c.StopTimeout))
				}
			},
		},
		{
			name: "all settings",
			yaml: "store: memory\nbind_host: 0.0.0.0\nport_range: 20000-20010\nallow_privileged_args: true\n" +
				"engines:\n  sglang:\n    gpus: \"0,1\"\n    args: [--foo]\n    env:\n      A: b\n  llamacpp:\n    gpus: GPU-1234abcd\n",
			check: func(t *testing.T, c config.Config) {
				if c.Store != "memory" || c.BindHost != "0.0.0.0" || c.PortRange != (config.PortRange{Low: 20000, High: 20010}) || !c.AllowPrivilegedArgs {
					t.Errorf("settings = %+v", c)
				}
				if o := c.Engines["sglang"]; o.GPUs != "0,1" || len(o.Args) != 1 || o.Env["A"] != "b" {
					t.Errorf("sglang override = %+v", o)
				}
				if o := c.Engines["llamacpp"]; o.GPUs != "GPU-1234abcd" {
					t.Errorf("llamacpp override = %+v", o)
				}
			},
		},
		{
			name: "allowed hosts and origins",
			yaml: "allowed_hosts: [aima.lan, \"box:9090\", \"[fd00::1]:9090\", 10.0.0.5]\nallowed_origins: [\"https://dash.example\", \"http://localhost:5173\"]\n",
			check: func(t *testing.T, c config.Config) {
				if len(c.AllowedHosts) != 4 || len(c.AllowedOrigins) != 2 {
					t.Errorf("allowed_hosts %v, allowed_origins %v", c.AllowedHosts, c.AllowedOrigins)
				}
			},
		},
		{name: "engine arg aima sets itself", yaml: "engines:\n  vllm:\n    args: [\"--port=9000\"]\n", wantErr: "--port"},
		{name: "unknown top-level key", yaml: "engine:\n  vllm:\n    image: x\n", wantErr: "engine"},
		{name: "typo in a known section", yaml: "engines:\n  vllm:\n    imag: x\n", wantErr: "imag"},
		{name: "unknown engine type", yaml: "engines:\n  tgi:\n    image: x\n", wantErr: "tgi"},
		{name: "bad gpus value", yaml: "engines:\n  vllm:\n    gpus: some\n", wantErr: "gpus"},
		{name: "bad gpus list", yaml: "engines:\n  vllm:\n    gpus: \"0,x\"\n", wantErr: "gpus"},
		{name: "bad duration", yaml: "start_timeout: soon\n", wantErr: "soon"},
		{name: "zero duration", yaml: "stop_timeout: 0s\n", wantErr: "positive"},
		{name: "negative duration", yaml: "health_interval: -1s\n", wantErr: "positive"},
		{name: "bad store", yaml: "store: redis\n", wantErr: "redis"},
		{name: "bind_host not an IP", yaml: "bind_host: notanip\n", wantErr: `bind_host "notanip": want an IP address`},
		{name: "bind_host a host name", yaml: "bind_host: localhost\n", wantErr: "bind_host"},
		{name: "bind_host empty", yaml: "bind_host: \"\"\n", wantErr: "bind_host"},
		{name: "bind_host IPv6 loopback", yaml: "bind_host: \"::1\"\n"},
		{name: "bad port range", yaml: "port_range: 20000\n", wantErr: "port_range"},
		{name: "inverted port range", yaml: "port_range: 20010-20000\n", wantErr: "port_range"},
		{name: "port range out of bounds", yaml: "port_range: 0-70000\n", wantErr: "port_range"},
		{name: "not a mapping", yaml: "- a\n- b\n", wantErr: "cannot unmarshal"},
		{name: "malformed yaml", yaml: "engines: [\n", wantErr: "yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			err := parseWithCatalog([]byte(tc.yaml), &c)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse: nil, want an error mentioning %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseEngineErrorsAreInvalidArgument(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"engines:\n  tgi:\n    image: x\n",
		"engines:\n  vllm:\n    gpus: some\n",
	} {
		c := config.Default()
		err := parseWithCatalog([]byte(raw), &c)
		if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != "engines" {
			t.Errorf("Parse(%q) = %v (kind %s, field %q), want invalid_argument on engines", raw, err, errs.KindOf(err), errs.FieldOf(err))
		}
	}
}

// parseWithCatalog is config.Parse and then the engine catalog's check of
// the engines section, which config leaves to the catalog (the daemon's
// LoadConfig does both at load time).
func parseWithCatalog(raw []byte, c *config.Config) error {
	if err := config.Parse(raw, c); err != nil {
		return err
	}
	_, err := engines.NewCatalog(c.Engines)
	return err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope", "config.yaml")
	tests := []struct {
		name      string
		path      string
		mustExist bool
		wantErr   bool
		check     func(t *testing.T, c config.Config)
	}{
		{name: "empty path", path: "", mustExist: true},
		{name: "missing, optional", path: missing, mustExist: false},
		{name: "missing, required", path: missing, mustExist: true, wantErr: true},
		{
			name: "readme example",
			path: writeFile(t, "config.yaml", "engines:\n  vllm:\n    image: aima-enginesim:dev\n    gpus: none\n"),
			check: func(t *testing.T, c config.Config) {
				if o := c.Engines["vllm"]; o.Image != "aima-enginesim:dev" || o.GPUs != "none" {
					t.Errorf("vllm override = %+v", o)
				}
			},
		},
		{name: "malformed yaml", path: writeFile(t, "bad.yaml", "engines:\n  vllm: [\n"), wantErr: true},
		{name: "invalid setting", path: writeFile(t, "store.yaml", "store: redis\n"), wantErr: true},
		{name: "too large", path: writeFile(t, "big.yaml", "# "+strings.Repeat("x", config.MaxFileSize)+"\n"), wantErr: true},
		{name: "a directory", path: t.TempDir(), mustExist: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(tc.path, tc.mustExist)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Load(%q): %v", tc.path, err)
				}
				if tc.check != nil {
					tc.check(t, c)
				} else if d := config.Default(); c.Store != d.Store || c.PortRange != d.PortRange || c.StartTimeout != d.StartTimeout || len(c.Engines) != 0 {
					t.Errorf("Load(%q) = %+v, want the defaults", tc.path, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load(%q): nil, want an error", tc.path)
			}
			if k := errs.KindOf(err); k != errs.InvalidArgument {
				t.Errorf("kind = %s, want invalid_argument", k)
			}
			if f := errs.FieldOf(err); f != "config" {
				t.Errorf("field = %q, want config", f)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the file %s", err, tc.path)
			}
		})
	}
}

func TestLoadSizeLimitBoundary(t *testing.T) {
	t.Parallel()
	// Exactly MaxFileSize bytes is allowed.
	body := "store: memory\n#"
	body += strings.Repeat("x", config.MaxFileSize-len(body)-1) + "\n"
	p := writeFile(t, "limit.yaml", body)
	c, err := config.Load(p, true)
	if err != nil {
		t.Fatalf("Load of a %d-byte file: %v", len(body), err)
	}
	if c.Store != "memory" {
		t.Fatalf("Store = %q, want memory", c.Store)
	}
}
