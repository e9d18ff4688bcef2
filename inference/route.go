package inference

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"aima/errs"
	"aima/services"
)

// ModelNotFoundError says no service answers to the requested model name.
// Similar holds a few of the names that do and look like it (a typo, a
// different case), so a client can correct itself; Total is how many model
// names there are (GET /v1/models lists them).
type ModelNotFoundError struct {
	Model   string
	Similar []string
	Total   int
}

func (e *ModelNotFoundError) Error() string {
	msg := "The model `" + e.Model + "` does not exist."
	switch {
	case e.Total == 0:
		return msg + " No models are available: create a service first."
	case len(e.Similar) > 0:
		return msg + " Did you mean " + strings.Join(e.Similar, ", ") + fmt.Sprintf("? (%d models in all: GET /v1/models lists them.)", e.Total)
	}
	return msg + fmt.Sprintf(" %d models are available: GET /v1/models lists them.", e.Total)
}

// Unwrap gives the error its kind.
func (e *ModelNotFoundError) Unwrap() error { return errs.NotFoundf("model %s not found", e.Model) }

// readiness ranks how soon a service can answer: lower is sooner.
func readiness(s *services.Service) int {
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

// pick chooses among the services that answer to a name (oldest first):
// the soonest ready, and among equally ready ones the one with the fewest
// requests in flight (then the oldest, for a stable choice). traffic gives
// a service's figures; it is asked only when there is a choice to make, so
// listing 20,000 names of one service each reads no figures and copies no
// record.
func pick(cands []*services.Service, traffic func(id string) *services.Traffic) *services.Service {
	if len(cands) < 2 {
		if len(cands) == 0 {
			return nil
		}
		return cands[0]
	}
	best, bestTr := cands[0], traffic(cands[0].ID)
	for _, s := range cands[1:] {
		tr := traffic(s.ID)
		if better(s, tr, best, bestTr) {
			best, bestTr = s, tr
		}
	}
	return best
}

func better(a *services.Service, ta *services.Traffic, b *services.Service, tb *services.Traffic) bool {
	ra, rb := readiness(a), readiness(b)
	if ra != rb {
		return ra < rb
	}
	return inFlight(ta) < inFlight(tb)
}

func inFlight(t *services.Traffic) int {
	if t == nil {
		return 0
	}
	return t.InFlight + t.Waiting
}

// Route returns the service a request for model goes to: one that
// answers to it as its served model name, an alias, its name or id, or its
// registered model's id (see nameIndex). A look-up in the index of names,
// so a request costs the same with 10 services as with 10,000.
func (g *Router) Route(ctx context.Context, model string) (services.Service, error) {
	if model == "" {
		return services.Service{}, errs.Invalid("model", "model is required")
	}
	ix, err := g.index(ctx)
	if err != nil {
		return services.Service{}, err
	}
	p := pick(ix.byName[model], g.sc.Figures)
	if p == nil {
		return services.Service{}, ix.notFound(model)
	}
	s := *p // the cache's record is shared: the caller gets a copy
	s.Traffic = g.sc.Figures(s.ID)
	return s, nil
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

func modelOf(name string, s *services.Service) Model {
	return Model{ID: name, ServiceID: s.ID, Status: s.Status, Phase: s.Phase, OnDemand: s.OnDemand,
		SwapGroup: s.SwapGroup, Alias: name != s.ServedModel, Created: s.CreatedAt.Unix()}
}

// Models lists every model name a request may use (served model names and
// aliases, sorted), each with the service that would answer it (the one
// Route picks).
func (g *Router) Models(ctx context.Context) ([]Model, error) {
	ix, err := g.index(ctx)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(ix.list)
	for _, i := range ix.multi {
		n := ix.models[i]
		out[i] = modelOf(n, pick(ix.byName[n], g.sc.Figures))
	}
	return out, nil
}

// Model is the entry of Models for one model name, or a
// *ModelNotFoundError naming a few similar names.
func (g *Router) Model(ctx context.Context, name string) (Model, error) {
	ix, err := g.index(ctx)
	if err != nil {
		return Model{}, err
	}
	if ix.isModel(name) {
		if s := pick(ix.byName[name], g.sc.Figures); s != nil {
			return modelOf(name, s), nil
		}
	}
	return Model{}, ix.notFound(name)
}
