package state

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/philippgille/gokv/syncmap"

	"aima/errs"
)

// backend opens a fresh, empty store for one test; the store is closed by
// t.Cleanup (Close is idempotent, so tests may close it themselves too).
type backend struct {
	name string
	open func(t *testing.T) Store
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) Store { return NewMemory() }},
		{"bolt", func(t *testing.T) Store {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "sub", "aima.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"gokv-syncmap", func(t *testing.T) Store {
			return NewGokv(syncmap.NewStore(syncmap.DefaultOptions))
		}},
		{"gokv-file", func(t *testing.T) Store {
			s, err := Open(BackendGokvFile, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
}

// forEachBackend runs f as a subtest against every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, s Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			f(t, s)
		})
	}
}

func mustPut(t *testing.T, s Store, key, val string, expectRev uint64) uint64 {
	t.Helper()
	rev, err := s.Put(context.Background(), key, []byte(val), expectRev)
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	if rev == 0 || rev == AnyRev {
		t.Fatalf("put %q: bad rev %d", key, rev)
	}
	return rev
}

func mustGet(t *testing.T, s Store, key string) (Entry, bool) {
	t.Helper()
	e, ok, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return e, ok
}

func wantConflict(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, ErrConflict) || errs.KindOf(err) != errs.Conflict {
		t.Fatalf("%s: want conflict, got %v (kind %q)", what, err, errs.KindOf(err))
	}
}

// conflictStore always reports a conflict on Put, to check that Update's
// retry loop is bounded.
type conflictStore struct{ Store }

func (conflictStore) Put(context.Context, string, []byte, uint64) (uint64, error) {
	return 0, conflict("put", "k")
}

func TestUpdateGivesUp(t *testing.T) {
	s := conflictStore{NewMemory()}
	calls := 0
	_, err := Update(context.Background(), s, "k", func([]byte, bool) ([]byte, error) {
		calls++
		return []byte("v"), nil
	})
	wantConflict(t, err, "update against permanent conflict")
	if calls != maxUpdateAttempts {
		t.Fatalf("fn called %d times, want %d", calls, maxUpdateAttempts)
	}
}
