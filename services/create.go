package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"aima/engines"
	"aima/errs"
	"aima/events"
	"aima/settings"
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
	// Serving through the gateway.
	Aliases     []string      // more model names requests may use
	OnDemand    bool          // the first request starts (or wakes) it
	IdleTimeout time.Duration // released after this long without requests; 0 = never
	SwapGroup   string        // members never run at the same time
	Evictable   bool          // may be released, while idle, to make room for another start
	OnOOM       string        // fail or retune (retune.go); "": the config's on_oom
}

// aliasRE accepts model names as clients write them: "qwen", "gpt-4o",
// "Qwen/Qwen3-0.6B", "llama3:8b".
var aliasRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)

// maxAliases bounds --alias.
const maxAliases = 16

// validateServing checks the gateway options of a new service.
func validateServing(spec CreateSpec) error {
	if len(spec.Aliases) > maxAliases {
		return errs.Invalid("aliases", "at most %d aliases", maxAliases)
	}
	for _, a := range spec.Aliases {
		if !aliasRE.MatchString(a) {
			return errs.Invalid("aliases", "alias %q: want 1-128 letters, digits, '.', '_', ':', '/' or '-', starting with a letter or digit", truncate(a, 60))
		}
	}
	if spec.IdleTimeout != 0 && spec.IdleTimeout < time.Second {
		return errs.Invalid("idle_timeout", "idle_timeout %s is below the minimum of 1s", spec.IdleTimeout)
	}
	if spec.SwapGroup != "" && !nameRE.MatchString(spec.SwapGroup) {
		return errs.Invalid("swap_group", "swap_group %q: want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", truncate(spec.SwapGroup, 60))
	}
	return nil
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

// privilegedArgs are engine arguments refused unless the config sets
// allow_privileged_args: --trust-remote-code makes vLLM and SGLang run
// Python shipped with the model, so a service created for a remote model
// reference would run that repository's code with the container's network
// and GPUs.
var privilegedArgs = []string{"--trust-remote-code"}

// privilegedEnvPrefix marks env read on the host, not in the container:
// the NVIDIA container runtime takes NVIDIA_VISIBLE_DEVICES (and the other
// NVIDIA_* settings) from the container's env, so one could expose GPUs
// beyond the service's gpus. Refused unless allow_privileged_args.
const privilegedEnvPrefix = "NVIDIA_"

// validateArgs checks a service's engine args and env. Engine args go to
// the engine's command line inside the container, never to Docker, so they
// cannot add privileges, devices or mounts; what they can do is undo what
// aima manages (the model, served name, host and port: always refused) or
// run code shipped with a model (privilegedArgs). Env can steer the NVIDIA
// runtime on the host (privilegedEnvPrefix). See docs/decisions.md.
func validateArgs(eng engines.Engine, args, env []string, allowPrivileged bool) error {
	if len(args) > maxArgs {
		return errs.Invalid("args", "at most %d args", maxArgs)
	}
	for _, a := range args {
		if len(a) > maxArgLen || strings.ContainsRune(a, 0) {
			return errs.Invalid("args", "arg too long or contains NUL")
		}
		if f, ok := eng.ManagedFlag(a); ok {
			return errs.Invalid("args", "arg %q is not allowed: aima sets %s itself (the model comes from model_id, the port from port; the engine must listen where aima maps and probes it)", truncate(a, 60), f)
		}
		name, _, _ := strings.Cut(a, "=")
		if !allowPrivileged && slices.Contains(privilegedArgs, strings.ReplaceAll(name, "_", "-")) {
			return errs.Invalid("args", "arg %q is not allowed: it runs code shipped with the model (the config's allow_privileged_args permits it)", truncate(a, 60))
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
		if !allowPrivileged && strings.HasPrefix(strings.ToUpper(k), privilegedEnvPrefix) {
			return errs.Invalid("env", "env %s is not allowed: the NVIDIA container runtime reads it on the host and it could expose GPUs beyond the service's gpus (set gpus instead; the config's allow_privileged_args permits it)", k)
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

// idRE is the form of a service ID. Names of that form are refused: a
// lookup by reference tries IDs first, so a name equal to another
// service's ID (now, or one generated later) would reach that service.
var idRE = regexp.MustCompile(`^svc-[0-9a-f]{8}$`)

// Create registers a new service. A model ID that is not registered is
// passed to the engine as a remote model reference, with a warning.
func (m *Manager) Create(ctx context.Context, spec CreateSpec) (Service, error) {
	eng, err := m.catalog.Get(spec.EngineType)
	if err != nil {
		return Service{}, err
	}
	s, err := m.newRecord(ctx, eng, spec)
	if err != nil {
		return Service{}, err
	}
	if err := m.resolveModel(ctx, &s, spec.ModelID); err != nil {
		return Service{}, err
	}
	unlock := m.lockPorts()
	defer unlock()
	if err := m.claimNameAndPort(ctx, &s, spec); err != nil {
		return Service{}, err
	}
	if err := m.col.Create(ctx, s.ID, s); err != nil {
		return Service{}, err
	}
	m.bus.Publish(events.Event{ServiceID: s.ID, Type: events.TypeCreated, Status: string(StatusCreated), Message: "created"})
	return s, nil
}

// newRecord checks a create's spec against its engine and the config and
// builds the record it describes (its model, name and port come next).
func (m *Manager) newRecord(ctx context.Context, eng engines.Engine, spec CreateSpec) (Service, error) {
	if spec.ModelID == "" {
		return Service{}, errs.Invalid("model_id", "model_id is required")
	}
	if spec.Name != "" && !nameRE.MatchString(spec.Name) {
		return Service{}, errs.Invalid("name", "name %q: want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", spec.Name)
	}
	if idRE.MatchString(spec.Name) {
		return Service{}, errs.Invalid("name", "name %q has the form of a service ID (svc- and 8 hex digits), which names cannot have: lookups try IDs first", spec.Name)
	}
	if spec.Port != 0 && (spec.Port < 1 || spec.Port > 65535) {
		return Service{}, errs.Invalid("port", "port %d out of range 1-65535", spec.Port)
	}
	gpus := eng.GPUs
	if spec.GPUs != "" {
		gpus = spec.GPUs
	}
	if err := validateArgs(eng, spec.Args, spec.Env, m.opts.AllowPrivilegedArgs); err != nil {
		return Service{}, err
	}
	if err := checkGPURequest(eng.Type, eng.Args, gpus, spec.Args, spec.Env); err != nil {
		return Service{}, err
	}
	if err := m.checkNamedGPUs(ctx, gpus); err != nil {
		return Service{}, err
	}
	policy, err := ParseRestartPolicy(spec.RestartPolicy)
	if err != nil {
		return Service{}, err
	}
	if err := validateServing(spec); err != nil {
		return Service{}, err
	}
	onOOM := spec.OnOOM
	if onOOM == "" {
		onOOM = m.opts.OnOOM // the config's on_oom
	}
	parsedOOM, err := settings.ParseOnOOM(onOOM)
	if err != nil {
		return Service{}, err
	}
	now := m.now().UTC()
	s := Service{
		ID: newID(), Name: spec.Name, EngineType: eng.Type, GPUs: gpus, Args: spec.Args, Env: spec.Env,
		Status: StatusCreated, CreatedAt: now, UpdatedAt: now, RestartPolicy: policy,
		Aliases: spec.Aliases, OnDemand: spec.OnDemand, SwapGroup: spec.SwapGroup, Evictable: spec.Evictable, OnOOM: string(parsedOOM),
	}
	if spec.IdleTimeout > 0 {
		s.IdleTimeout = spec.IdleTimeout.String()
	}
	// A service aima may release sleeps instead of stopping where the
	// engine can.
	s.SleepMode = eng.Sleep != nil && (s.OnDemand || s.IdleTimeout != "" || s.SwapGroup != "" || s.Evictable)
	return s, nil
}

// resolveModel points the record at its model: a registered model's files
// (mounted under /models), or else a remote reference the engine fetches
// itself, with a warning saying so.
func (m *Manager) resolveModel(ctx context.Context, s *Service, modelID string) error {
	model, err := m.models.Get(ctx, modelID)
	switch {
	case err == nil:
		s.ModelID, s.ModelPath = model.ID, model.Path
		s.ModelRef = path.Join("/models", model.ID)
		s.ServedModel = model.Name
		if model.Format == "gguf" {
			s.ModelRef = path.Join("/models", model.ID, "model.gguf")
		}
		return nil
	case errs.Is(err, errs.NotFound):
		if len(modelID) > 256 || !remoteRefRE.MatchString(modelID) {
			return errs.Invalid("model_id", "model_id %q is neither a registered model nor a valid remote reference (org/name)", truncate(modelID, 60))
		}
		s.ModelID, s.ModelRef, s.ServedModel = modelID, modelID, modelID
		s.Warnings = append(s.Warnings, fmt.Sprintf("model %q is not registered; it is passed to the engine as a remote model reference", modelID))
		return nil
	}
	return err
}

// claimNameAndPort makes the record's name and ID unique among the
// services (the name defaults to the ID) and checks an explicit port;
// called with the port lock held, so two creates cannot claim the same.
func (m *Manager) claimNameAndPort(ctx context.Context, s *Service, spec CreateSpec) error {
	all, err := m.shared(ctx)
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	for _, o := range all {
		if o.Name == s.Name {
			return errs.New(errs.Conflict, "a service named %q already exists (%s)", s.Name, o.ID)
		}
		taken[o.ID], taken[o.Name] = true, true
	}
	// A new ID is never another service's ID or name (a name of ID form
	// may be in a store from before names were checked).
	for taken[s.ID] {
		s.ID = newID()
	}
	if spec.Name == "" {
		s.Name = s.ID
	}
	if spec.Port != 0 {
		// An explicit port is checked now; an automatic one is handed out
		// at the first start (assignPort), so records never run out of ports.
		if s.Port, err = m.allocatePort(spec.Port, all); err != nil {
			return err
		}
		s.Endpoint = m.endpoint(s.Port)
	}
	return nil
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
	all, err := m.shared(ctx)
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
func (m *Manager) allocatePort(want int, all []*Service) (int, error) {
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
