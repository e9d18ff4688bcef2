package inference

import (
	"context"
	"slices"
	"sort"
	"strings"

	"aima/errs"
	"aima/services"
)

// ModelNotFoundError says no service answers to the requested model name;
// Available lists the names that do, so a client can correct itself.
type ModelNotFoundError struct {
	Model     string
	Available []string
}

func (e *ModelNotFoundError) Error() string {
	msg := "The model `" + e.Model + "` does not exist."
	if len(e.Available) == 0 {
		return msg + " No models are available: create a service first."
	}
	return msg + " Available models: " + strings.Join(e.Available, ", ") + "."
}

// Unwrap gives the error its kind.
func (e *ModelNotFoundError) Unwrap() error { return errs.NotFoundf("model %s not found", e.Model) }

// answersTo reports whether a request for model goes to the service: model
// is its served model name, one of its aliases, its name or id, or its
// registered model's id. (No allocation: Route asks it of every record.)
func answersTo(s *services.Service, model string) bool {
	return (s.ServedModel != "" && s.ServedModel == model) || slices.Contains(s.Aliases, model) ||
		s.Name == model || s.ID == model || (s.ModelPath != "" && s.ModelID == model)
}

// readiness ranks how soon a service can answer: lower is sooner.
func readiness(s services.Service) int {
	switch s.Status {
	case services.StatusRunning:
		return 0
	case services.StatusUnhealthy:
		return 1
	case services.StatusSleeping:
		return 2
	case services.StatusCreating:
		return 3
	}
	if s.OnDemand && s.Status != services.StatusStopping {
		return 4
	}
	return 5
}

// pick chooses the service for model among candidates (oldest first): the
// soonest ready, and among equally ready ones the one with the fewest
// requests in flight (then the oldest, for a stable choice). all is every
// service, for the names a not-found error lists.
func pick(candidates []services.Service, model string, all []*services.Service) (services.Service, error) {
	var best *services.Service
	for i := range candidates {
		s := &candidates[i]
		if !answersTo(s, model) {
			continue
		}
		if best == nil || better(*s, *best) {
			best = s
		}
	}
	if best == nil {
		return services.Service{}, &ModelNotFoundError{Model: model, Available: available(all)}
	}
	return *best, nil
}

func better(a, b services.Service) bool {
	ra, rb := readiness(a), readiness(b)
	if ra != rb {
		return ra < rb
	}
	return inFlight(a) < inFlight(b)
}

func inFlight(s services.Service) int {
	if s.Traffic == nil {
		return 0
	}
	return s.Traffic.InFlight + s.Traffic.Waiting
}

// available lists the model names requests may use, sorted, without
// the service ids and names (which also work but are not models).
func available(all []*services.Service) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range all {
		for _, n := range modelNames(s) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// modelNames are the served model name and the aliases.
func modelNames(s *services.Service) []string {
	out := append([]string{}, s.Aliases...)
	if s.ServedModel != "" {
		out = append([]string{s.ServedModel}, out...)
	}
	return out
}

// Route returns the service a request for model goes to. It reads the
// record cache's shared records and copies only the services that answer
// to model, so a request costs the same with 10 records as with 10,000.
func (g *Gateway) Route(ctx context.Context, model string) (services.Service, error) {
	if model == "" {
		return services.Service{}, errs.Invalid("model", "model is required")
	}
	all, err := g.m.ListShared(ctx)
	if err != nil {
		return services.Service{}, err
	}
	return pick(g.candidates(all, func(s *services.Service) bool { return answersTo(s, model) }), model, all)
}

// candidates copies the shared records that match, oldest first, with
// their traffic figures (which pick weighs).
func (g *Gateway) candidates(all []*services.Service, match func(*services.Service) bool) []services.Service {
	var out []services.Service
	for _, p := range all {
		if match(p) {
			s := *p
			s.Traffic = g.m.Traffic(s.ID)
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// Model is one entry of the model list: a name requests may use and the
// service behind it.
type Model struct {
	ID        string          `json:"id" jsonschema:"the model name to put in a request"`
	ServiceID string          `json:"service_id" jsonschema:"the service that answers it"`
	Status    services.Status `json:"status" jsonschema:"the service's status"`
	Phase     services.Phase  `json:"phase,omitempty" jsonschema:"the start phase while creating"`
	OnDemand  bool            `json:"on_demand,omitempty" jsonschema:"a request starts the service"`
	SwapGroup string          `json:"swap_group,omitempty"`
	Alias     bool            `json:"alias,omitempty" jsonschema:"the name is an alias, not the served model name"`
	Created   int64           `json:"created" jsonschema:"when the service was created, unix seconds"`
}

// Models lists every model name a request may use, with the service that
// would answer it (the one Route picks).
func (g *Gateway) Models(ctx context.Context) ([]Model, error) {
	all, err := g.m.ListShared(ctx)
	if err != nil {
		return nil, err
	}
	out := []Model{}
	for _, n := range available(all) {
		s, err := pick(g.candidates(all, func(s *services.Service) bool { return answersTo(s, n) }), n, all)
		if err != nil {
			continue
		}
		out = append(out, Model{
			ID: n, ServiceID: s.ID, Status: s.Status, Phase: s.Phase, OnDemand: s.OnDemand,
			SwapGroup: s.SwapGroup, Alias: n != s.ServedModel, Created: s.CreatedAt.Unix(),
		})
	}
	return out, nil
}
