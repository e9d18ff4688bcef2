package kubestore

import (
	"context"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"aima/errs"
	"aima/state"
)

// maxAnyRevAttempts bounds an unconditional Put's retries: each conflict
// is another writer's progress, and the cache is refreshed before the
// next round.
const maxAnyRevAttempts = 50

// Put writes through to the API server: expectRev 0 is a create (an
// existing object is a conflict), a revision is an update carrying it as
// the object's resourceVersion (the API server refuses it when the object
// changed since: a conflict), and AnyRev updates whatever is there,
// retrying when another writer moves first.
func (s *Store) Put(ctx context.Context, key string, val []byte, expectRev uint64) (uint64, error) {
	if err := s.check(ctx, key); err != nil {
		return 0, err
	}
	switch expectRev {
	case 0:
		rev, err := s.create(ctx, key, val)
		if apierrors.IsAlreadyExists(err) {
			s.refresh(ctx, key)
			return 0, conflict("put", key)
		}
		return rev, s.wrap(err, "put", key)
	case state.AnyRev:
		for range maxAnyRevAttempts {
			var (
				rev uint64
				err error
			)
			if cur, ok := s.cache.get(key); ok {
				rev, err = s.update(ctx, key, val, cur.Rev)
			} else {
				rev, err = s.create(ctx, key, val)
			}
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err) {
				s.refresh(ctx, key)
				continue
			}
			return rev, s.wrap(err, "put", key)
		}
		return 0, errs.Wrap(errs.Conflict, state.ErrConflict, "put %q: gave up after %d conflicting attempts", key, maxAnyRevAttempts)
	}
	rev, err := s.update(ctx, key, val, expectRev)
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		s.refresh(ctx, key)
		return 0, conflict("put", key)
	}
	return rev, s.wrap(err, "put", key)
}

func (s *Store) create(ctx context.Context, key string, val []byte) (uint64, error) {
	return s.took(s.object(ctx, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return s.ri.Create(ctx, s.newObject(key, val, "", nonce()), metav1.CreateOptions{})
	}))
}

func (s *Store) update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	return s.took(s.object(ctx, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return s.ri.Update(ctx, s.newObject(key, val, strconv.FormatUint(rev, 10), nonce()), metav1.UpdateOptions{})
	}))
}

// object is bounded for a request that answers with an object.
func (s *Store) object(ctx context.Context, call func(context.Context) (*unstructured.Unstructured, error)) (*unstructured.Unstructured, error) {
	var u *unstructured.Unstructured
	err := s.bounded(ctx, func(ctx context.Context) (err error) {
		u, err = call(ctx)
		return err
	})
	return u, err
}

// took applies what the API server stored to the cache.
func (s *Store) took(u *unstructured.Unstructured, err error) (uint64, error) {
	if err != nil {
		return 0, err
	}
	e, ok := entryOf(u)
	if !ok {
		return 0, errs.New(errs.Internal, "state store: the API server answered a write with an unreadable record %s", u.GetName())
	}
	s.cache.put(e)
	return e.Rev, nil
}

// refresh reads key from the API server into the cache after a conflict,
// so the caller's next read sees what won (the watch may not have told
// yet).
func (s *Store) refresh(ctx context.Context, key string) {
	u, err := s.object(ctx, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return s.ri.Get(ctx, objectName(s.name, key), metav1.GetOptions{})
	})
	switch {
	case apierrors.IsNotFound(err):
		if cur, ok := s.cache.get(key); ok {
			s.cache.remove(key, cur.Rev)
		}
	case err == nil:
		if e, ok := entryOf(u); ok {
			s.cache.put(e)
		}
	}
}

// Delete removes key: with a revision, only if the object still has it
// (a precondition the API server checks); AnyRev whatever is there; 0
// only checks that the key is absent.
func (s *Store) Delete(ctx context.Context, key string, expectRev uint64) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	cur, ok := s.cache.get(key)
	if expectRev == 0 {
		if !ok {
			return nil
		}
		s.refresh(ctx, key)
		if _, ok := s.cache.get(key); ok {
			return conflict("delete", key)
		}
		return nil
	}
	opts := metav1.DeleteOptions{}
	if expectRev != state.AnyRev {
		rv := strconv.FormatUint(expectRev, 10)
		opts.Preconditions = &metav1.Preconditions{ResourceVersion: &rv}
	}
	err := s.bounded(ctx, func(ctx context.Context) error {
		return s.ri.Delete(ctx, objectName(s.name, key), opts)
	})
	switch {
	case err == nil:
		last := cur.Rev // the revision it had: later reports of it are stale
		if expectRev != state.AnyRev {
			last = max(last, expectRev)
		}
		s.cache.remove(key, last)
		return nil
	case apierrors.IsNotFound(err) && expectRev == state.AnyRev:
		if ok {
			s.cache.remove(key, cur.Rev)
		}
		return nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		s.refresh(ctx, key)
		return conflict("delete", key)
	}
	return s.wrap(err, "delete", key)
}

// batchParallel is how many keys of a batch are written at once.
const batchParallel = 16

// Batch implements state.Batcher: the API server has no transactions, so
// the batch is not atomic (a failure may leave part of it written, as
// state.Apply allows), but its keys are written in parallel, each key's
// operations in order, instead of one round trip after another. A batch
// with an invalid key is refused before anything is written.
func (s *Store) Batch(ctx context.Context, ops []state.Op) error {
	for _, op := range ops {
		if err := s.check(ctx, op.Key); err != nil {
			return err
		}
	}
	byKey := map[string][]state.Op{}
	var order []string
	for _, op := range ops {
		if _, ok := byKey[op.Key]; !ok {
			order = append(order, op.Key)
		}
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, batchParallel)
		mu    sync.Mutex
		first error
	)
	for _, key := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func(ops []state.Op) {
			fail := func(err error) {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			defer func() {
				if r := recover(); r != nil {
					fail(errs.New(errs.Internal, "state store: batch write panicked: %v", r))
				}
				<-sem
				wg.Done()
			}()
			for _, op := range ops {
				var err error
				if op.Delete {
					err = s.Delete(ctx, op.Key, state.AnyRev)
				} else {
					_, err = s.Put(ctx, op.Key, op.Value, state.AnyRev)
				}
				if err != nil {
					fail(err)
					return
				}
			}
		}(byKey[key])
	}
	wg.Wait()
	return first
}
