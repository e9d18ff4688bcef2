package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"aima/engines"
	"aima/errs"
)

// CreateSpec is what a new service is made of.
type CreateSpec struct {
	ModelID    string
	EngineType string
	Name       string
	Port       int
	GPUs       string
	Args       []string
	Env        []string
	// RestartPolicy is no (default) or on-failure.
	RestartPolicy string
}

var (
	nameRE   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// remoteRefRE accepts Hugging Face style references (org/name, name).
	remoteRefRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)
)

// Limits on input sizes.
const (
	maxArgs   = 64
	maxArgLen = 4096
	maxEnv    = 64
)

// privilegedArgs are engine arguments that would reach outside the
// container; rejected so an agent cannot escalate through --arg.
var privilegedArgs = []string{"--privileged", "--cap-add", "--device", "--volume", "--mount", "--pid", "--network=host", "--ipc=host"}

func validateArgs(args, env []string, allowPrivileged bool) error {
	if len(args) > maxArgs {
		return errs.Invalid("args", "at most %d args", maxArgs)
	}
	for _, a := range args {
		if len(a) > maxArgLen || strings.ContainsRune(a, 0) {
			return errs.Invalid("args", "arg too long or contains NUL")
		}
		for _, p := range privilegedArgs {
			if !allowPrivileged && (a == p || strings.HasPrefix(a, p+"=")) {
				return errs.Invalid("args", "arg %q is not allowed: it would give the container host privileges (the config's allow_privileged_args permits it)", a)
			}
		}
	}
	if len(env) > maxEnv {
		return errs.Invalid("env", "at most %d env entries", maxEnv)
	}
	for _, e := range env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || !envKeyRE.MatchString(k) || len(e) > maxArgLen || strings.ContainsRune(e, 0) {
			return errs.Invalid("env", "env %q: want KEY=VALUE with KEY of letters, digits and _", truncate(e, 60))
		}
	}
	return nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "svc-" + hex.EncodeToString(b[:])
}

// Create registers a new service. A model ID that is not registered is
// passed to the engine as a remote model reference, with a warning.
func (m *Manager) Create(ctx context.Context, spec CreateSpec) (Service, error) {
	eng, err := m.catalog.Get(spec.EngineType)
	if err != nil {
		return Service{}, err
	}
	if spec.ModelID == "" {
		return Service{}, errs.Invalid("model_id", "model_id is required")
	}
	if spec.Name != "" && !nameRE.MatchString(spec.Name) {
		return Service{}, errs.Invalid("name", "name %q: want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", spec.Name)
	}
	if spec.Port != 0 && (spec.Port < 1 || spec.Port > 65535) {
		return Service{}, errs.Invalid("port", "port %d out of range 1-65535", spec.Port)
	}
	gpus := eng.GPUs
	if spec.GPUs != "" {
		if _, err := engines.ParseGPUs(spec.GPUs); err != nil {
			return Service{}, errs.Invalid("gpus", "%v", err)
		}
		gpus = spec.GPUs
	}
	if err := validateArgs(spec.Args, spec.Env, m.opts.AllowPrivilegedArgs); err != nil {
		return Service{}, err
	}
	policy, err := ParseRestartPolicy(spec.RestartPolicy)
	if err != nil {
		return Service{}, err
	}
	now := m.now().UTC()
	s := Service{
		ID: newID(), EngineType: eng.Type, GPUs: gpus, Args: spec.Args, Env: spec.Env,
		Status: StatusCreated, CreatedAt: now, UpdatedAt: now, RestartPolicy: policy,
	}
	model, err := m.models.Get(ctx, spec.ModelID)
	switch {
	case err == nil:
		s.ModelID, s.ModelPath = model.ID, model.Path
		s.ModelRef = path.Join("/models", model.ID)
		if model.Format == "gguf" {
			s.ModelRef = path.Join("/models", model.ID, "model.gguf")
		}
	case errs.Is(err, errs.NotFound):
		if len(spec.ModelID) > 256 || !remoteRefRE.MatchString(spec.ModelID) {
			return Service{}, errs.Invalid("model_id", "model_id %q is neither a registered model nor a valid remote reference (org/name)", truncate(spec.ModelID, 60))
		}
		s.ModelID, s.ModelRef = spec.ModelID, spec.ModelID
		s.Warnings = append(s.Warnings, fmt.Sprintf("model %q is not registered; it is passed to the engine as a remote model reference", spec.ModelID))
	default:
		return Service{}, err
	}
	s.Name = spec.Name
	if s.Name == "" {
		s.Name = s.ID
	}
	unlock := m.lockPorts()
	defer unlock()
	all, err := m.col.List(ctx)
	if err != nil {
		return Service{}, err
	}
	for _, o := range all {
		if o.Name == s.Name {
			return Service{}, errs.New(errs.Conflict, "a service named %q already exists (%s)", s.Name, o.ID)
		}
	}
	if spec.Port != 0 {
		// An explicit port is checked now; an automatic one is handed out
		// at the first start (assignPort), so records never run out of ports.
		if s.Port, err = m.allocatePort(spec.Port, all); err != nil {
			return Service{}, err
		}
		s.Endpoint = m.endpoint(s.Port)
	}
	if err := m.col.Create(ctx, s.ID, s); err != nil {
		return Service{}, err
	}
	return s, nil
}

func (m *Manager) endpoint(port int) string {
	return "http://" + net.JoinHostPort(m.opts.BindHost, strconv.Itoa(port))
}

// assignPort gives a service that has no host port yet (it was created
// without --port and never started) one from the port range, and records
// it. The record keeps it for every later start, and it is freed with the
// record. Called with the service's lifecycle lock held.
func (m *Manager) assignPort(ctx context.Context, s Service) (Service, error) {
	if s.Port != 0 {
		return s, nil
	}
	unlock := m.lockPorts()
	defer unlock()
	all, err := m.col.List(ctx)
	if err != nil {
		return s, err
	}
	port, err := m.allocatePort(0, all)
	if err != nil {
		return s, err
	}
	return m.col.Update(ctx, s.ID, func(x *Service) error {
		if x.Port == 0 {
			x.Port, x.Endpoint = port, m.endpoint(port)
		}
		return nil
	})
}

func (m *Manager) lockPorts() func() {
	m.portMu.Lock()
	return m.portMu.Unlock
}

// allocatePort hands out a host port no other service holds. A requested
// port must be free of other services; an automatic one is also checked to
// be bindable now.
func (m *Manager) allocatePort(want int, all []Service) (int, error) {
	taken := map[int]string{}
	for _, o := range all {
		if o.Port != 0 {
			taken[o.Port] = o.ID
		}
	}
	if want != 0 {
		if id, ok := taken[want]; ok {
			return 0, errs.New(errs.Conflict, "port %d is already assigned to service %s", want, id)
		}
		return want, nil
	}
	ports := make([]int, 0, 16)
	for p := m.opts.PortLow; p <= m.opts.PortHigh; p++ {
		if _, ok := taken[p]; !ok {
			ports = append(ports, p)
		}
	}
	sort.Ints(ports)
	for _, p := range ports {
		if portFree(m.opts.BindHost, p) {
			return p, nil
		}
	}
	return 0, errs.New(errs.Unavailable, "no free host port in %d-%d", m.opts.PortLow, m.opts.PortHigh)
}

// portFree reports whether host:port can be bound right now.
func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
