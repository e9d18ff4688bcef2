package state

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"

	"aima/errs"
)

// Moving a whole store: `aima store migrate` (bbolt to the Kubernetes API
// server and back), `aima store backup` (any store to a bbolt file) and
// `aima store restore --from` (a bbolt file into any store) are all Copy.

// CopyResult says what Copy did.
type CopyResult struct {
	Records map[string]int `json:"records" jsonschema:"records copied, by kind (the first segment of their key)"`
	Removed int            `json:"removed,omitempty" jsonschema:"records of the destination removed because the source does not have them (replace)"`
}

// Copy makes dst hold exactly src's keys and values (revisions are dst's
// own). A dst that holds records already is refused with errs.Conflict
// unless replace, which removes its keys that src does not have. The
// writes go through Apply: one transaction on bbolt, in parallel on the
// API server.
func Copy(ctx context.Context, dst, src Store, replace bool) (CopyResult, error) {
	entries, err := src.List(ctx, "")
	if err != nil {
		return CopyResult{}, err
	}
	existing, err := dst.List(ctx, "")
	if err != nil {
		return CopyResult{}, err
	}
	if len(existing) > 0 && !replace {
		return CopyResult{}, errs.New(errs.Conflict, "the destination store already holds %d records%s; replacing them needs force",
			len(existing), countSuffix(Count(existing)))
	}
	in := map[string]bool{}
	ops := make([]Op, 0, len(entries)+len(existing))
	for _, e := range entries {
		in[e.Key] = true
		ops = append(ops, Op{Key: e.Key, Value: e.Value})
	}
	res := CopyResult{Records: Count(entries)}
	for _, e := range existing {
		if !in[e.Key] {
			ops = append(ops, Op{Key: e.Key, Delete: true})
			res.Removed++
		}
	}
	return res, Apply(ctx, dst, ops)
}

// Count counts entries by the first segment of their key (services,
// models, events, meta, ...).
func Count(entries []Entry) map[string]int {
	m := map[string]int{}
	for _, e := range entries {
		group, _, _ := strings.Cut(e.Key, "/")
		m[group]++
	}
	return m
}

func countSuffix(m map[string]int) string {
	if m["services"] == 0 && m["models"] == 0 {
		return ""
	}
	b, _ := json.Marshal(map[string]int{"services": m["services"], "models": m["models"]})
	return " " + string(b)
}

// Check lists the entries of s that are not what aima writes (a JSON
// object), as InspectBolt does for a file, and counts the records.
func Check(ctx context.Context, s Store) (map[string]int, []DamagedKey, error) {
	entries, err := s.List(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	var bad []DamagedKey
	for _, e := range entries {
		if why := valueProblem(e.Value); why != "" {
			bad = append(bad, DamagedKey{Key: e.Key, Error: why})
		}
	}
	return Count(entries), bad, nil
}

// valueProblem says why a stored value is not a JSON object, or "".
func valueProblem(v []byte) string {
	body := bytes.TrimSpace(v)
	if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
		return "not a JSON object"
	}
	return ""
}

// ExportBolt writes src's entries to a new bbolt store file at path (an
// export: no backup beside it) and fsyncs it; the file is written under a
// temporary name and renamed, so path is either whole or absent. An
// existing path is errs.Conflict.
func ExportBolt(ctx context.Context, src Store, path string) (CopyResult, error) {
	if _, err := os.Stat(path); err == nil {
		return CopyResult{}, errs.New(errs.Conflict, "%s exists; choose another file", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return CopyResult{}, errs.Wrap(errs.Unavailable, err, "export to %s", path)
	}
	tmp := path + ".export.tmp"
	_ = os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: boltLockTimeout})
	if err != nil {
		return CopyResult{}, errs.Wrap(errs.Unavailable, err, "export to %s", path)
	}
	s := &boltStore{db: db, path: tmp}
	err = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(boltBucket); return err })
	var res CopyResult
	if err == nil {
		res, err = Copy(ctx, s, src, false)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return CopyResult{}, errs.Wrap(errs.Unavailable, err, "export to %s", path)
	}
	return res, syncDir(filepath.Dir(path))
}

// ReadBoltFile returns the entries of the bbolt store file at path, which
// must be sound (InspectBolt), without writing to it.
func ReadBoltFile(path string) ([]Entry, error) {
	if rep := InspectBolt(path); !rep.OK() {
		return nil, errs.New(errs.Unavailable, "%s is %s: %s", path, rep.Status, rep.Problem)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: boltLockTimeout})
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "read %s", path)
	}
	defer db.Close()
	s := &boltStore{db: db, path: path}
	return s.List(context.Background(), "")
}

// Entries returns an in-memory Store holding entries (a file read with
// ReadBoltFile), as the source of a Copy.
func Entries(entries []Entry) Store {
	m := NewMemory()
	_ = Apply(context.Background(), m, func() []Op {
		ops := make([]Op, len(entries))
		for i, e := range entries {
			ops[i] = Op{Key: e.Key, Value: e.Value}
		}
		return ops
	}())
	return m
}
