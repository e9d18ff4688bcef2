package testenv

import (
	"encoding/json"
	"testing"
)

// DecodeJSON unmarshals the JSON document s (a CLI's -o json output, an HTTP
// body) into a T, failing the test when it does not decode.
func DecodeJSON[T any](t testing.TB, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// List is the shape of every list operation's output (-o json).
type List[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}
