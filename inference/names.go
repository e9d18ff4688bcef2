package inference

import (
	"context"
	"slices"
	"sort"
	"strings"

	"aima/services"
)

// nameIndex maps every name a request may use to the services that answer
// to it, oldest first. Building it costs a pass over every record; it is
// built once per change of the records, not per request: the record cache
// hands out the same record pointers until a record is written (a write
// replaces the pointer), so the records changed exactly when the pointers
// differ from those the index was built from. Comparing 10,000 pointers
// takes microseconds; listing 10,000 services' names per name, as Models
// once did, took seconds.
type nameIndex struct {
	recs   []*services.Service            // the records it was built from
	byName map[string][]*services.Service // every name → its services, oldest first
	models []string                       // the model names (served names and aliases), sorted
	list   []Model                        // Models' entry of each of models, for its oldest service (see Models)
	multi  []int                          // the indexes in models of names more than one service answers to
}

// index returns the name index of the current records, building it anew
// only when they changed. Concurrent callers may each build one; the last
// one stored wins, and every one of them is right for its records.
func (g *Router) index(ctx context.Context) (*nameIndex, error) {
	all, err := g.m.ListShared(ctx)
	if err != nil {
		return nil, err
	}
	if ix := g.names.Load(); ix != nil && slices.Equal(ix.recs, all) {
		return ix, nil
	}
	ix := buildIndex(all)
	g.names.Store(ix)
	return ix, nil
}

// buildIndex indexes a service under each name it answers to: its served
// model name, its aliases, its name, its id, and its registered model's id
// (a model with a path; a remote reference is not a name of the service).
func buildIndex(all []*services.Service) *nameIndex {
	byAge := slices.Clone(all)
	sort.SliceStable(byAge, func(i, j int) bool { return byAge[i].CreatedAt.Before(byAge[j].CreatedAt) })
	ix := &nameIndex{recs: all, byName: make(map[string][]*services.Service, 3*len(all))}
	isModel := map[string]bool{}
	add := func(name string, s *services.Service) {
		if name == "" {
			return
		}
		l := ix.byName[name]
		if n := len(l); n > 0 && l[n-1] == s {
			return // a service under one name twice (its name is its served name)
		}
		ix.byName[name] = append(l, s)
	}
	for _, s := range byAge {
		for _, n := range modelNames(s) {
			add(n, s)
			if !isModel[n] {
				isModel[n] = true
				ix.models = append(ix.models, n)
			}
		}
		add(s.Name, s)
		add(s.ID, s)
		if s.ModelPath != "" {
			add(s.ModelID, s)
		}
	}
	sort.Strings(ix.models)
	// A record never changes once cached, so a name's entry is fixed for
	// the index's life, but for a name several services answer to: which
	// one answers depends on the requests in flight (see Models).
	ix.list = make([]Model, len(ix.models))
	for i, n := range ix.models {
		cands := ix.byName[n]
		ix.list[i] = modelOf(n, cands[0])
		if len(cands) > 1 {
			ix.multi = append(ix.multi, i)
		}
	}
	return ix
}

// modelNames are the served model name and the aliases.
func modelNames(s *services.Service) []string {
	if s.ServedModel == "" {
		return s.Aliases
	}
	return append([]string{s.ServedModel}, s.Aliases...)
}

// isModel reports whether name is a model name (not only a service's name
// or id).
func (ix *nameIndex) isModel(name string) bool {
	i := sort.SearchStrings(ix.models, name)
	return i < len(ix.models) && ix.models[i] == name
}

// maxSimilar is how many similar names a not-found error offers.
const maxSimilar = 5

// notFound is the error for a name nothing answers to, with the model
// names closest to it.
func (ix *nameIndex) notFound(name string) *ModelNotFoundError {
	return &ModelNotFoundError{Model: name, Similar: similar(name, ix.models, maxSimilar), Total: len(ix.models)}
}

// similar returns up to n of names that look like name: the same but for
// case, one containing the other, or a few edits apart (about a third of
// its length), closest first.
func similar(name string, names []string, n int) []string {
	type match struct {
		name string
		dist int
	}
	lower := strings.ToLower(name)
	limit := max(1, len([]rune(name))/3)
	var found []match
	for _, c := range names {
		lc := strings.ToLower(c)
		d := -1
		switch {
		case lc == lower:
			d = 0
		case len(lower) >= 3 && (strings.Contains(lc, lower) || strings.Contains(lower, lc) && len(lc) >= 3):
			d = 1
		default:
			if e := editDistance(lower, lc, limit); e <= limit {
				d = e
			}
		}
		if d >= 0 {
			found = append(found, match{c, d})
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].dist < found[j].dist })
	out := make([]string, 0, min(n, len(found)))
	for _, m := range found[:min(n, len(found))] {
		out = append(out, m.name)
	}
	return out
}

// editDistance is the Levenshtein distance of a and b (bytes), or limit+1
// as soon as it must exceed limit: most names are far apart and cost only
// their length check.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
