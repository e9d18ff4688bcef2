package models

import (
	"context"
	"time"

	"aima/errs"
	"aima/state"
)

// Registry stores models.
type Registry struct {
	col *state.Collection[Model]
	now func() time.Time
}

// NewRegistry returns a registry over the store.
func NewRegistry(s state.Store) *Registry {
	return &Registry{col: state.NewCollection[Model](s, "models/", "model"), now: time.Now}
}

// addTimeout bounds one model add: stat, config.json and the size walk.
const addTimeout = 30 * time.Second

var validName = func(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' {
			return false
		}
	}
	return true
}

// Add registers the model at path. Adding the same path again returns the
// existing record (updated name if one is given); a damaged record of the
// same path is replaced by what is on disk now. The filesystem work is
// bounded by ctx and addTimeout (see onDisk).
func (r *Registry) Add(ctx context.Context, path, name string) (Model, error) {
	if name != "" && !validName(name) {
		return Model{}, errs.Invalid("name", "name %q: want 1-128 printable characters without '/'", name)
	}
	m, err := onDisk(ctx, addTimeout, "inspecting model path "+path, func(ctx context.Context) (Model, error) {
		return Inspect(ctx, path)
	})
	if err != nil {
		return Model{}, err
	}
	return r.register(ctx, m, name)
}

// register stores an inspected model, or refreshes its existing record.
func (r *Registry) register(ctx context.Context, m Model, name string) (Model, error) {
	if name != "" {
		m.Name = name
	}
	m.CreatedAt = r.now().UTC()
	err := r.col.Create(ctx, m.ID, m)
	if err == nil || !errs.Is(err, errs.Conflict) {
		return m, err
	}
	updated, err := r.col.Update(ctx, m.ID, func(old *Model) error {
		if name != "" {
			old.Name = name
		}
		old.SizeBytes, old.Architecture, old.DType, old.MaxContext = m.SizeBytes, m.Architecture, m.DType, m.MaxContext
		return nil
	})
	if state.IsDamaged(err) {
		return m, r.col.Put(ctx, m.ID, m)
	}
	return updated, err
}

// Get returns a model by ID or by name (an ID match wins). A damaged
// record is an errs.Conflict that says so (state.IsDamaged).
func (r *Registry) Get(ctx context.Context, ref string) (Model, error) {
	if ref == "" {
		return Model{}, errs.Invalid("model_id", "model_id is required")
	}
	if m, err := r.col.Get(ctx, ref); err == nil {
		return m, nil
	} else if !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.InvalidArgument) {
		return Model{}, err
	}
	all, err := r.col.List(ctx)
	if err != nil {
		return Model{}, err
	}
	for _, m := range all {
		if m.Name == ref {
			return m, nil
		}
	}
	return Model{}, errs.NotFoundf("model %s not found", ref)
}

// List returns all readable models, oldest first (Damaged lists the rest).
func (r *Registry) List(ctx context.Context) ([]Model, error) {
	all, err := r.col.List(ctx)
	if err != nil {
		return nil, err
	}
	sortByCreated(all)
	return all, nil
}

// Damaged lists the model records that cannot be read; Remove deletes them.
func (r *Registry) Damaged(ctx context.Context) ([]state.Damaged, error) {
	return r.col.Damaged(ctx)
}

// Remove unregisters a model (its files are left alone). A damaged record
// is removed too; the result then carries only its ID.
func (r *Registry) Remove(ctx context.Context, id string) (Model, error) {
	m, err := r.Get(ctx, id)
	if state.IsDamaged(err) {
		return Model{ID: id}, r.col.Delete(ctx, id)
	}
	if err != nil {
		return Model{}, err
	}
	return m, r.col.Delete(ctx, m.ID)
}
