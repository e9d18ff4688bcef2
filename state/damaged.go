package state

import (
	"errors"
	"fmt"
)

// ErrDamaged is wrapped by every error about a stored record that cannot be
// decoded (test with errors.Is or IsDamaged).
var ErrDamaged = errors.New("damaged record")

// Damaged describes a stored record that cannot be decoded: a bad disk
// write, or an edit by hand. Such a record is quarantined where it is, not
// interpreted: Collection.List leaves it out, Get and Update refuse it with
// errs.Conflict (wrapping ErrDamaged), Delete removes it, and Scan and
// Collection.Damaged list it. One damaged record therefore never takes down
// a listing, and it can always be deleted.
type Damaged struct {
	Kind  string `json:"kind" jsonschema:"what the record is: service or model"`
	ID    string `json:"id" jsonschema:"the record's id; delete it with service_delete or model_remove"`
	Error string `json:"error" jsonschema:"why it cannot be read"`
	Bytes int    `json:"bytes" jsonschema:"size of the stored value"`
}

// IsDamaged reports whether err is about a damaged record.
func IsDamaged(err error) bool { return errors.Is(err, ErrDamaged) }

// damagedError says which record is damaged and why.
type damagedError struct {
	noun, id string
	why      error
}

func (e *damagedError) Error() string {
	return fmt.Sprintf("%s %s is damaged in the state store (%v); it can only be deleted", e.noun, e.id, e.why)
}

func (e *damagedError) Unwrap() error { return ErrDamaged }
