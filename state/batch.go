package state

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// Op is one unconditional write of a batch: Value stored under Key, or Key
// removed when Delete.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// Batcher is a store that applies several writes as one transaction: all
// of them or none, with one commit (one fsync for bbolt) instead of one per
// write. The event journal appends and prunes through it.
type Batcher interface {
	Batch(ctx context.Context, ops []Op) error
}

// Apply applies ops in order: in one transaction when the store is a
// Batcher, else one Put or Delete at a time (a backend without transactions
// may then stop part-way; Apply returns the first error).
func Apply(ctx context.Context, s Store, ops []Op) error {
	if b, ok := s.(Batcher); ok {
		return b.Batch(ctx, ops)
	}
	for _, op := range ops {
		var err error
		if op.Delete {
			err = s.Delete(ctx, op.Key, AnyRev)
		} else {
			_, err = s.Put(ctx, op.Key, op.Value, AnyRev)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkOps(ctx context.Context, ops []Op) error {
	for _, op := range ops {
		if err := checkOp(ctx, op.Key); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Batch implements Batcher: one bbolt read-write transaction, fsynced once.
func (s *boltStore) Batch(ctx context.Context, ops []Op) error {
	if err := checkOps(ctx, ops); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		for _, op := range ops {
			if op.Delete {
				if err := b.Delete([]byte(op.Key)); err != nil {
					return err
				}
				continue
			}
			rev, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put([]byte(op.Key), encodeBolt(rev, op.Value)); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrapErr("batch", ops[0].Key, err)
}

// Batch implements Batcher under the store's lock.
func (s *memoryStore) Batch(ctx context.Context, ops []Op) error {
	if err := checkOps(ctx, ops); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	for _, op := range ops {
		if op.Delete {
			delete(s.m, op.Key)
			continue
		}
		s.seq++
		s.m[op.Key] = memEntry{val: clone(op.Value), rev: s.seq}
	}
	return nil
}
