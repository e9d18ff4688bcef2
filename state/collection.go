package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"aima/errs"
)

// maxIDLen bounds record IDs so keys stay well inside every backend's key
// limits (and file-name limits for the gokv file store).
const maxIDLen = 128

// Collection is a typed view of the records of one kind (services, models,
// ...) stored as JSON under a key prefix, so domain code deals in structs
// and errs kinds instead of bytes and revisions. Record id lives at key
// prefix+id. Errors name the record with the collection's noun, e.g.
// "service svc-12ab not found", so they can go to users as they are.
type Collection[T any] struct {
	s      Store
	prefix string
	noun   string
	cache  *recordCache[T] // nil unless WithCache
}

// NewCollection returns the collection of T stored under prefix (e.g.
// "services/"; it should end in "/" so that one collection's keys are never
// a prefix of another's) whose records are called noun (e.g. "service") in
// error messages.
func NewCollection[T any](s Store, prefix, noun string) *Collection[T] {
	return &Collection[T]{s: s, prefix: prefix, noun: noun}
}

// ValidateID reports whether id can name a record: non-empty, at most 128
// bytes of valid UTF-8, no "/" (it would nest under the prefix) and no
// control characters (they break logs, terminals and file names). Failures
// are errs.InvalidArgument. Every Collection method checks its id with it;
// it is exported so front-ends can reject bad input early.
func ValidateID(id string) error {
	var why string
	switch {
	case id == "":
		why = "must not be empty"
	case len(id) > maxIDLen:
		why = "longer than 128 bytes"
	case !utf8.ValidString(id):
		why = "not valid UTF-8"
	case strings.Contains(id, "/"):
		why = `must not contain "/"`
	case strings.ContainsFunc(id, unicode.IsControl):
		why = "must not contain control characters"
	default:
		return nil
	}
	return errs.New(errs.InvalidArgument, "invalid id %q: %s", id, why)
}

// key returns the store key of id after validating it.
func (c *Collection[T]) key(id string) (string, error) {
	if err := ValidateID(id); err != nil {
		return "", err
	}
	return c.prefix + id, nil
}

func (c *Collection[T]) notFound(id string) error {
	return errs.NotFoundf("%s %s not found", c.noun, id)
}

func (c *Collection[T]) encode(id string, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encode %s %s", c.noun, id)
	}
	return b, nil
}

// decode unpacks a stored record. A record that is not a JSON object of
// the collection's type is damaged (see Damaged).
func (c *Collection[T]) decode(id string, b []byte) (T, error) {
	var v T
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return v, c.damaged(id, errors.New("not a JSON object"))
	}
	if err := json.Unmarshal(trimmed, &v); err != nil {
		return v, c.damaged(id, err)
	}
	return v, nil
}

func (c *Collection[T]) damaged(id string, why error) error {
	return &errs.Error{Kind: errs.Conflict, Err: &damagedError{noun: c.noun, id: id, why: why}}
}

// Get returns the record id, or errs.NotFound.
func (c *Collection[T]) Get(ctx context.Context, id string) (T, error) {
	var zero T
	key, err := c.key(id)
	if err != nil {
		return zero, err
	}
	if c.cache != nil {
		return c.cacheGet(ctx, id)
	}
	e, ok, err := c.s.Get(ctx, key)
	if err != nil {
		return zero, err
	}
	if !ok {
		return zero, c.notFound(id)
	}
	return c.decode(id, e.Value)
}

// List returns all records that can be read, in ascending id order;
// damaged records are left out (Scan and Damaged report them). Keys under
// the prefix that cannot be IDs of this collection (they contain "/") are
// skipped.
func (c *Collection[T]) List(ctx context.Context) ([]T, error) {
	out, _, err := c.Scan(ctx)
	return out, err
}

// Damaged lists the records of the collection that cannot be read.
func (c *Collection[T]) Damaged(ctx context.Context) ([]Damaged, error) {
	if c.cache != nil {
		return c.cacheDamaged(ctx)
	}
	_, bad, err := c.Scan(ctx)
	return bad, err
}

// Scan returns the records that can be read and, separately, the damaged
// ones, both in ascending id order. One damaged record never hides the
// others.
func (c *Collection[T]) Scan(ctx context.Context) ([]T, []Damaged, error) {
	if c.cache != nil {
		ptrs, _, bad, err := c.cacheScan(ctx)
		if err != nil {
			return nil, nil, err
		}
		vals := make([]T, len(ptrs))
		for i, p := range ptrs {
			vals[i] = *p
		}
		return vals, bad, nil
	}
	entries, err := c.s.List(ctx, c.prefix)
	if err != nil {
		return nil, nil, err
	}
	out := make([]T, 0, len(entries))
	bad := []Damaged{}
	err = c.decodeAll(entries, func(_ string, v T) error {
		out = append(out, v)
		return nil
	}, func(id string, why error, size int) {
		bad = append(bad, Damaged{Kind: c.noun, ID: id, Error: why.Error(), Bytes: size})
	})
	return out, bad, err
}

// decodeAll decodes the collection's records among entries (keys under the
// prefix that cannot be ids are skipped), in their order: each record that
// can be read goes to ok, whose error ends the walk; each damaged one goes
// to damaged with why it cannot be read and its size, and the walk goes on.
func (c *Collection[T]) decodeAll(entries []Entry, ok func(id string, v T) error, damaged func(id string, why error, size int)) error {
	for _, e := range entries {
		id := strings.TrimPrefix(e.Key, c.prefix)
		if strings.Contains(id, "/") {
			continue
		}
		v, err := c.decode(id, e.Value)
		if err != nil {
			var de *damagedError
			errors.As(err, &de)
			damaged(id, de.why, len(e.Value))
			continue
		}
		if err := ok(id, v); err != nil {
			return err
		}
	}
	return nil
}

// ScanShared is Scan for readers that only read: with a cache it returns
// the cached records themselves, copying none, and each one's JSON
// encoding (as json.Marshal writes it), in the same order. The records
// must never be modified (copy one to change it). Without a cache the
// records are decoded afresh and the encodings are nil.
func (c *Collection[T]) ScanShared(ctx context.Context) ([]*T, []json.RawMessage, []Damaged, error) {
	if c.cache != nil {
		return c.cacheScan(ctx)
	}
	vals, bad, err := c.Scan(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	ptrs := make([]*T, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return ptrs, nil, bad, nil
}

// Create stores v as record id if no such record exists; otherwise it fails
// with errs.Conflict ("<noun> <id> already exists").
func (c *Collection[T]) Create(ctx context.Context, id string, v T) error {
	return c.put(ctx, id, v, 0)
}

// put stores v as record id with the store's revision check expectRev: 0
// (only if absent: an existing record is errs.Conflict, "already exists")
// or AnyRev (whatever is there).
func (c *Collection[T]) put(ctx context.Context, id string, v T, expectRev uint64) error {
	key, err := c.key(id)
	if err != nil {
		return err
	}
	b, err := c.encode(id, v)
	if err != nil {
		return err
	}
	return c.write(ctx, id, func() ([]byte, error) {
		if _, err := c.s.Put(ctx, key, b, expectRev); err != nil {
			if expectRev == 0 && errors.Is(err, ErrConflict) {
				return nil, errs.New(errs.Conflict, "%s %s already exists", c.noun, id)
			}
			return nil, err
		}
		return b, nil
	})
}

// Update atomically modifies record id: fn gets a fresh copy of the stored
// record and changes it in place; the result is written only if nobody
// wrote the record meanwhile, else fn runs again on the newer copy (see
// state.Update), so fn must not have side effects beyond *T. An absent
// record is errs.NotFound; an error from fn aborts with nothing written and
// is returned unchanged. Update returns the record as stored.
func (c *Collection[T]) Update(ctx context.Context, id string, fn func(*T) error) (T, error) {
	var zero, result T
	key, err := c.key(id)
	if err != nil {
		return zero, err
	}
	err = c.write(ctx, id, func() ([]byte, error) {
		var stored []byte
		_, err := Update(ctx, c.s, key, func(old []byte, exists bool) ([]byte, error) {
			if !exists {
				return nil, c.notFound(id)
			}
			v, err := c.decode(id, old)
			if err != nil {
				return nil, err
			}
			if err := fn(&v); err != nil {
				return nil, err
			}
			result = v
			stored, err = c.encode(id, v)
			return stored, err
		})
		return stored, err
	})
	if err != nil {
		return zero, err
	}
	return result, nil
}

// Put stores v as record id whether or not it exists (last writer wins).
func (c *Collection[T]) Put(ctx context.Context, id string, v T) error {
	return c.put(ctx, id, v, AnyRev)
}

// Delete removes record id, or fails with errs.NotFound if it is absent.
// The existence check and the delete are one atomic step (revision-checked,
// retried on conflict), so two concurrent Deletes yield one success and one
// NotFound.
func (c *Collection[T]) Delete(ctx context.Context, id string) error {
	key, err := c.key(id)
	if err != nil {
		return err
	}
	return c.write(ctx, id, func() ([]byte, error) { return nil, c.delete(ctx, id, key) })
}

func (c *Collection[T]) delete(ctx context.Context, id, key string) error {
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
		e, ok, err := c.s.Get(ctx, key)
		if err != nil {
			return err
		}
		if !ok {
			return c.notFound(id)
		}
		if err := c.s.Delete(ctx, key, e.Rev); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return errs.Wrap(errs.Conflict, ErrConflict, "delete %s %s: gave up after %d conflicting attempts", c.noun, id, maxUpdateAttempts)
}
