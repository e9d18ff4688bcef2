package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrs "go.etcd.io/bbolt/errors"

	"aima/errs"
)

// boltBucket is the single bucket holding every key. Its sequence counter is
// the store-wide revision source.
var boltBucket = []byte("aima")

// boltLockTimeout bounds how long OpenBolt waits for bbolt's file lock, so a
// second daemon on the same data dir fails fast instead of hanging.
var boltLockTimeout = 2 * time.Second

// boltStore is the durable single-node backend. Every Put/Delete is one
// bbolt read-write transaction, which serialises the read-check-write and is
// fsynced before it returns (bbolt's default; NoSync stays false), so an
// acknowledged write survives a crash or power loss.
//
// Values are encoded as an 8-byte big-endian revision followed by the value
// bytes. Revisions come from the bucket's NextSequence, so they are unique
// and increasing across the whole file.
type boltStore struct {
	db   *bolt.DB
	path string
	// created is set when the file did not exist before this open.
	created bool
	backups *backups
}

// OpenBolt opens (creating if needed, with its parent directory at 0700) the
// bbolt file at path. bbolt holds an exclusive flock on the file while open;
// if another process (or another open in this one) holds it, OpenBolt gives
// up after a short timeout with errs.Unavailable rather than blocking.
//
// The file is inspected first (InspectBolt) and opened for writing only
// when it is sound. A damaged file (empty, truncated, corrupt) is an
// errs.Unavailable that names the file, says what is wrong and what to do
// (restore the backup, see RestoreBolt). A missing file whose backup exists
// is refused the same way: the store vanished, and starting empty would
// lose the way back. Once open, the store keeps a consistent backup next to
// the file (path + ".bak"), written now, hourly while it changes, and at
// Close.
func OpenBolt(path string) (Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "state store %s: create directory", path)
	}
	rep := InspectBolt(path)
	switch rep.Status {
	case FileOK:
	case FileMissing:
		if bak := InspectBolt(BackupPath(path)); bak.Status != FileMissing {
			return nil, vanishedStoreError(rep, bak)
		}
	case FileLocked:
		return nil, errs.New(errs.Unavailable, "state store %s is locked by another aima process", path)
	default:
		return nil, damagedStoreError(rep, InspectBolt(BackupPath(path)))
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: boltLockTimeout})
	if err != nil {
		if errors.Is(err, bolterrs.ErrTimeout) {
			return nil, errs.New(errs.Unavailable, "state store %s is locked by another aima process", path)
		}
		return nil, errs.Wrap(errs.Unavailable, err, "open state store %s", path)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, errs.Wrap(errs.Internal, err, "state store %s: create bucket", path)
	}
	s := &boltStore{db: db, path: path, created: rep.Status == FileMissing}
	s.backups = startBackups(s)
	return s, nil
}

// encodeBolt packs rev and val into the stored form.
func encodeBolt(rev uint64, val []byte) []byte {
	out := make([]byte, 8+len(val))
	binary.BigEndian.PutUint64(out, rev)
	copy(out[8:], val)
	return out
}

// decode unpacks a stored value; the returned value is a copy, safe to
// use after the transaction ends.
func (s *boltStore) decode(key, raw []byte) (Entry, error) {
	if len(raw) < 8 {
		return Entry{}, errs.New(errs.Internal, "state store %s: corrupt record %q (%d bytes)", s.path, key, len(raw))
	}
	return Entry{Key: string(key), Rev: binary.BigEndian.Uint64(raw), Value: clone(raw[8:])}, nil
}

// wrapErr classifies a bbolt failure. Errors that already carry a kind (our
// own conflicts and corruption reports) pass through unchanged.
func (s *boltStore) wrapErr(op, key string, err error) error {
	var e *errs.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case errors.Is(err, bolterrs.ErrDatabaseNotOpen):
		return errClosed
	case errors.Is(err, bolterrs.ErrKeyTooLarge), errors.Is(err, bolterrs.ErrValueTooLarge):
		return errs.Wrap(errs.InvalidArgument, err, "state: %s %q", op, key)
	}
	return errs.Wrap(errs.Unavailable, err, "state store %s: %s %q", s.path, op, key)
}

// checkRev reads key's revision in b (0: absent) within a write's
// transaction and refuses the write op with a conflict when it is not
// expectRev (an absent key matches 0 and AnyRev).
func (s *boltStore) checkRev(b *bolt.Bucket, op, key string, expectRev uint64) (cur uint64, err error) {
	if raw := b.Get([]byte(key)); raw != nil {
		e, err := s.decode([]byte(key), raw)
		if err != nil {
			return 0, err
		}
		cur = e.Rev
	}
	if revMismatch(expectRev, cur) {
		return 0, conflict(op, key)
	}
	return cur, nil
}

func (s *boltStore) Get(ctx context.Context, key string) (Entry, bool, error) {
	if err := checkOp(ctx, key); err != nil {
		return Entry{}, false, err
	}
	var (
		e     Entry
		found bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(boltBucket).Get([]byte(key))
		if raw == nil {
			return nil
		}
		var err error
		e, err = s.decode([]byte(key), raw)
		found = err == nil
		return err
	})
	if err != nil {
		return Entry{}, false, s.wrapErr("get", key, err)
	}
	return e, found, nil
}

func (s *boltStore) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []Entry{}
	p := []byte(prefix)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			e, err := s.decode(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, s.wrapErr("list", prefix, err)
	}
	return out, nil
}

func (s *boltStore) Put(ctx context.Context, key string, val []byte, expectRev uint64) (uint64, error) {
	if err := checkOp(ctx, key); err != nil {
		return 0, err
	}
	var rev uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		if _, err := s.checkRev(b, "put", key, expectRev); err != nil {
			return err
		}
		var err error
		if rev, err = b.NextSequence(); err != nil {
			return err
		}
		return b.Put([]byte(key), encodeBolt(rev, val))
	})
	if err != nil {
		return 0, s.wrapErr("put", key, err)
	}
	return rev, nil
}

func (s *boltStore) Delete(ctx context.Context, key string, expectRev uint64) error {
	if err := checkOp(ctx, key); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		cur, err := s.checkRev(b, "delete", key, expectRev)
		if err != nil {
			return err
		}
		if cur == 0 {
			return nil
		}
		return b.Delete([]byte(key))
	})
	return s.wrapErr("delete", key, err)
}

// Close stops the backups and releases the file lock; bbolt makes repeated
// calls a no-op.
func (s *boltStore) Close() error {
	s.backups.stop()
	if err := s.db.Close(); err != nil {
		return errs.Wrap(errs.Internal, err, "close state store %s", s.path)
	}
	return nil
}
