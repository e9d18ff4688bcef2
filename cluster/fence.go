package cluster

import (
	"context"

	"aima/runtime"
	"aima/state"
)

// Fence says whether this daemon may still write: nil while it holds its
// lease (Elector.Fence), an error once it may not.
type Fence func(ctx context.Context) error

// FenceRuntime returns rt with every write (pull, create, start, stop,
// remove) refused unless fence allows it at that moment: a leader that was
// paused past its lease, and does not know yet that another replica
// leads, cannot touch a Pod. Reads pass.
func FenceRuntime(rt runtime.Runtime, fence Fence) runtime.Runtime {
	return &fencedRuntime{Runtime: rt, fence: fence}
}

type fencedRuntime struct {
	runtime.Runtime
	fence Fence
}

var (
	_ runtime.StepReporter = (*fencedRuntime)(nil)
	_ runtime.Diagnoser    = (*fencedRuntime)(nil)
)

func (f *fencedRuntime) PullImage(ctx context.Context, ref string, opts runtime.PullOptions) error {
	if err := f.fence(ctx); err != nil {
		return err
	}
	return f.Runtime.PullImage(ctx, ref, opts)
}

func (f *fencedRuntime) CreateContainer(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if err := f.fence(ctx); err != nil {
		return "", err
	}
	return f.Runtime.CreateContainer(ctx, spec)
}

func (f *fencedRuntime) StartContainer(ctx context.Context, id string) error {
	if err := f.fence(ctx); err != nil {
		return err
	}
	return f.Runtime.StartContainer(ctx, id)
}

func (f *fencedRuntime) StopContainer(ctx context.Context, id string, opts runtime.StopOptions) error {
	if err := f.fence(ctx); err != nil {
		return err
	}
	return f.Runtime.StopContainer(ctx, id, opts)
}

func (f *fencedRuntime) RemoveContainer(ctx context.Context, id string, opts runtime.RemoveOptions) error {
	if err := f.fence(ctx); err != nil {
		return err
	}
	return f.Runtime.RemoveContainer(ctx, id, opts)
}

// ReportsSteps and Diagnose pass the optional interfaces through.
func (f *fencedRuntime) ReportsSteps() bool {
	r, ok := f.Runtime.(runtime.StepReporter)
	return ok && r.ReportsSteps()
}

func (f *fencedRuntime) Diagnose(ctx context.Context) runtime.ClusterReport {
	if d, ok := f.Runtime.(runtime.Diagnoser); ok {
		return d.Diagnose(ctx)
	}
	return runtime.ClusterReport{}
}

// FenceStore returns s with every write refused unless fence allows it:
// the records a deposed leader still holds in memory never reach the
// store. Reads pass.
func FenceStore(s state.Store, fence Fence) state.Store {
	return &fencedStore{Store: s, fence: fence}
}

type fencedStore struct {
	state.Store
	fence Fence
}

var (
	_ state.Batcher   = (*fencedStore)(nil)
	_ state.Describer = (*fencedStore)(nil)
)

func (f *fencedStore) Put(ctx context.Context, key string, val []byte, expectRev uint64) (uint64, error) {
	if err := f.fence(ctx); err != nil {
		return 0, err
	}
	return f.Store.Put(ctx, key, val, expectRev)
}

func (f *fencedStore) Delete(ctx context.Context, key string, expectRev uint64) error {
	if err := f.fence(ctx); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key, expectRev)
}

func (f *fencedStore) Batch(ctx context.Context, ops []state.Op) error {
	if err := f.fence(ctx); err != nil {
		return err
	}
	return state.Apply(ctx, f.Store, ops)
}

func (f *fencedStore) Describe() state.Info { return state.Describe(f.Store) }
