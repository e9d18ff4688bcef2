package inference

import (
	"errors"
	"slices"
	"testing"

	"aima/errs"
	"aima/services"
)

func svc(id string, st services.Status, inFlight int, mut ...func(*services.Service)) services.Service {
	s := services.Service{ID: id, Name: id + "-name", Status: st, ServedModel: "qwen", Traffic: &services.Traffic{InFlight: inFlight}}
	for _, f := range mut {
		f(&s)
	}
	return s
}

// pickFrom is pick with all the candidates (Route passes those that
// answer to the model).
func pickFrom(all []services.Service, model string) (services.Service, error) {
	ptrs := make([]*services.Service, len(all))
	for i := range all {
		ptrs[i] = &all[i]
	}
	return pick(all, model, ptrs)
}

func TestPickByEveryName(t *testing.T) {
	t.Parallel()
	all := []services.Service{
		svc("svc-a", services.StatusRunning, 0, func(s *services.Service) {
			s.Aliases = []string{"gpt-4o"}
			s.ModelID, s.ModelPath = "m-123", "/models/qwen"
		}),
		svc("svc-b", services.StatusRunning, 0, func(s *services.Service) { s.ServedModel = "llama" }),
	}
	for _, name := range []string{"qwen", "gpt-4o", "svc-a", "svc-a-name", "m-123"} {
		got, err := pickFrom(all, name)
		if err != nil || got.ID != "svc-a" {
			t.Errorf("pick(%q) = %s, %v; want svc-a", name, got.ID, err)
		}
	}
	if got, _ := pickFrom(all, "llama"); got.ID != "svc-b" {
		t.Errorf("pick(llama) = %s", got.ID)
	}
}

func TestPickPrefersReadyThenLeastBusy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		all  []services.Service
		want string
	}{
		{"fewest in flight", []services.Service{svc("a", services.StatusRunning, 3), svc("b", services.StatusRunning, 1), svc("c", services.StatusRunning, 2)}, "b"},
		{"running before sleeping", []services.Service{svc("a", services.StatusSleeping, 0), svc("b", services.StatusRunning, 9)}, "b"},
		{"sleeping before starting", []services.Service{svc("a", services.StatusCreating, 0), svc("b", services.StatusSleeping, 0)}, "b"},
		{"on demand before not", []services.Service{svc("a", services.StatusStopped, 0), svc("b", services.StatusStopped, 0, func(s *services.Service) { s.OnDemand = true })}, "b"},
		{"oldest on a tie", []services.Service{svc("a", services.StatusRunning, 1), svc("b", services.StatusRunning, 1)}, "a"},
	}
	for _, tc := range tests {
		if got, err := pickFrom(tc.all, "qwen"); err != nil || got.ID != tc.want {
			t.Errorf("%s: picked %s (%v), want %s", tc.name, got.ID, err, tc.want)
		}
	}
}

func TestPickUnknownListsModels(t *testing.T) {
	t.Parallel()
	all := []services.Service{
		svc("a", services.StatusRunning, 0, func(s *services.Service) { s.Aliases = []string{"gpt-4o"} }),
		svc("b", services.StatusStopped, 0, func(s *services.Service) { s.ServedModel = "llama" }),
	}
	_, err := pickFrom(all, "mistral")
	var nf *ModelNotFoundError
	if !errors.As(err, &nf) || !errs.Is(err, errs.NotFound) {
		t.Fatalf("err = %v, want ModelNotFoundError of kind not_found", err)
	}
	if !slices.Equal(nf.Available, []string{"gpt-4o", "llama", "qwen"}) {
		t.Errorf("available = %v", nf.Available)
	}
}
