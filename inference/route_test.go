package inference

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"aima/errs"
	"aima/services"
)

func svc(id string, st services.Status, inFlight int, mut ...func(*services.Service)) *services.Service {
	s := &services.Service{ID: id, Name: id + "-name", Status: st, ServedModel: "qwen", Traffic: &services.Traffic{InFlight: inFlight}}
	for _, f := range mut {
		f(s)
	}
	return s
}

// route is Route over the records all (oldest first), their figures
// taken from the records themselves.
func route(all []*services.Service, model string) (services.Service, error) {
	for i, s := range all {
		s.CreatedAt = time.Unix(int64(i), 0)
	}
	ix := buildIndex(all)
	s := pick(ix.byName[model], func(id string) *services.Traffic {
		for _, s := range all {
			if s.ID == id {
				return s.Traffic
			}
		}
		return nil
	})
	if s == nil {
		return services.Service{}, ix.notFound(model)
	}
	return *s, nil
}

func TestPickByEveryName(t *testing.T) {
	t.Parallel()
	all := []*services.Service{
		svc("svc-a", services.StatusRunning, 0, func(s *services.Service) {
			s.Aliases = []string{"gpt-4o"}
			s.ModelID, s.ModelPath = "m-123", "/models/qwen"
		}),
		svc("svc-b", services.StatusRunning, 0, func(s *services.Service) { s.ServedModel = "llama" }),
	}
	for _, name := range []string{"qwen", "gpt-4o", "svc-a", "svc-a-name", "m-123"} {
		got, err := route(all, name)
		if err != nil || got.ID != "svc-a" {
			t.Errorf("route(%q) = %s, %v; want svc-a", name, got.ID, err)
		}
	}
	if got, _ := route(all, "llama"); got.ID != "svc-b" {
		t.Errorf("route(llama) = %s", got.ID)
	}
}

func TestPickPrefersReadyThenLeastBusy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		all  []*services.Service
		want string
	}{
		{"fewest in flight", []*services.Service{svc("a", services.StatusRunning, 3), svc("b", services.StatusRunning, 1), svc("c", services.StatusRunning, 2)}, "b"},
		{"running before sleeping", []*services.Service{svc("a", services.StatusSleeping, 0), svc("b", services.StatusRunning, 9)}, "b"},
		{"sleeping before starting", []*services.Service{svc("a", services.StatusCreating, 0), svc("b", services.StatusSleeping, 0)}, "b"},
		{"on demand before not", []*services.Service{svc("a", services.StatusStopped, 0), svc("b", services.StatusStopped, 0, func(s *services.Service) { s.OnDemand = true })}, "b"},
		{"oldest on a tie", []*services.Service{svc("a", services.StatusRunning, 1), svc("b", services.StatusRunning, 1)}, "a"},
	}
	for _, tc := range tests {
		if got, err := route(tc.all, "qwen"); err != nil || got.ID != tc.want {
			t.Errorf("%s: picked %s (%v), want %s", tc.name, got.ID, err, tc.want)
		}
	}
}

func TestUnknownModelNamesSimilarOnes(t *testing.T) {
	t.Parallel()
	all := []*services.Service{
		svc("a", services.StatusRunning, 0, func(s *services.Service) { s.Aliases = []string{"gpt-4o"} }),
		svc("b", services.StatusStopped, 0, func(s *services.Service) { s.ServedModel = "llama" }),
	}
	for i := range 1000 {
		all = append(all, svc(fmt.Sprintf("s%d", i), services.StatusStopped, 0, func(s *services.Service) {
			s.ServedModel = fmt.Sprintf("model-%04d", i)
		}))
	}
	for _, tc := range []struct {
		ask  string
		want []string
	}{
		{"mistral", []string{}},
		{"Llama", []string{"llama"}},
		{"lama", []string{"llama"}},
		{"gpt4o", []string{"gpt-4o"}},
		{"model-0007", []string{"model-0007"}[:0]}, // a real name: found, see below
		{"model-00x7", []string{"model-0007", "model-0017", "model-0027", "model-0037", "model-0047"}},
	} {
		_, err := route(all, tc.ask)
		if tc.ask == "model-0007" {
			if err != nil {
				t.Errorf("%s: %v", tc.ask, err)
			}
			continue
		}
		var nf *ModelNotFoundError
		if !errors.As(err, &nf) || !errs.Is(err, errs.NotFound) {
			t.Fatalf("%s: err = %v, want ModelNotFoundError of kind not_found", tc.ask, err)
		}
		if !slices.Equal(nf.Similar, tc.want) || nf.Total != 1003 {
			t.Errorf("%s: similar %v of %d, want %v of 1003", tc.ask, nf.Similar, nf.Total, tc.want)
		}
	}
}

// The index is rebuilt when a record changed (a new pointer, or a record
// more or less), never otherwise.
func TestIndexFollowsTheRecords(t *testing.T) {
	t.Parallel()
	a, b := svc("a", services.StatusRunning, 0), svc("b", services.StatusRunning, 0, func(s *services.Service) { s.ServedModel = "llama" })
	ix := buildIndex([]*services.Service{a, b})
	if !slices.Equal(ix.recs, []*services.Service{a, b}) || len(ix.byName["llama"]) != 1 || !ix.isModel("qwen") || ix.isModel("a") {
		t.Fatalf("index %+v", ix)
	}
	b2 := *b
	b2.Aliases = []string{"l3"}
	if slices.Equal(ix.recs, []*services.Service{a, &b2}) {
		t.Fatal("a replaced record compares equal")
	}
	if ix2 := buildIndex([]*services.Service{a, &b2}); !ix2.isModel("l3") {
		t.Fatal("the new alias is not indexed")
	}
}
