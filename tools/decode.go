package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"

	"aima/errs"
)

// MaxInputBytes caps an operation's JSON input.
const MaxInputBytes = 1 << 20

// Decode parses raw (a JSON object, or empty for "no arguments") into dst
// strictly: unknown fields, wrong types and missing required fields are
// InvalidArgument errors that name the field.
func Decode(raw json.RawMessage, schema *jsonschema.Schema, dst any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > MaxInputBytes {
		return errs.Invalid("", "input is %d bytes; the limit is %d", len(raw), MaxInputBytes)
	}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	if raw[0] != '{' {
		return errs.Invalid("", "input must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return errs.Invalid("", "input is not valid JSON: %v", err)
	}
	var unknown []string
	for k := range fields {
		if _, ok := schema.Properties[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := make([]string, 0, len(schema.Properties))
		for k := range schema.Properties {
			known = append(known, k)
		}
		sort.Strings(known)
		return errs.Invalid(unknown[0], "unknown field %q (known fields: %s)", unknown[0], strings.Join(known, ", "))
	}
	for _, r := range schema.Required {
		v, ok := fields[r]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return errs.Invalid(r, "field %q is required", r)
		}
	}
	if err := nullElements(fields, schema); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// te.Value is "string", "bool", ... or "number -1": a number is
			// shown as given.
			return errs.Invalid(te.Field, "field %q must be %s, not %s", te.Field, jsonType(te.Type.Kind().String()), strings.TrimPrefix(te.Value, "number "))
		}
		return errs.Invalid("", "input: %v", err)
	}
	return nil
}

// nullElements refuses null inside an array field: encoding/json would
// turn it into the element type's zero value (an empty argument, say) and
// store it as if it had been given.
func nullElements(fields map[string]json.RawMessage, schema *jsonschema.Schema) error {
	for name, v := range fields {
		if SchemaType(schema.Properties[name]) != "array" {
			continue
		}
		var elems []json.RawMessage
		if json.Unmarshal(v, &elems) != nil {
			continue // not an array: the decoder names the type error
		}
		for i, e := range elems {
			if bytes.Equal(bytes.TrimSpace(e), []byte("null")) {
				return errs.Invalid(name, "field %q: element %d is null; give a value or leave it out", name, i)
			}
		}
	}
	return nil
}

func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "uint"):
		return "an integer of 0 or more"
	case strings.HasPrefix(kind, "int"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "bool":
		return "a boolean"
	case kind == "string":
		return "a string"
	case kind == "slice":
		return "an array"
	case kind == "map", kind == "struct":
		return "an object"
	}
	return fmt.Sprintf("of type %s", kind)
}

// SchemaType is the JSON type a property accepts ("string", "integer",
// "boolean", "array", ...), ignoring "null"; front-ends use it to type
// query parameters and CLI flags.
func SchemaType(s *jsonschema.Schema) string {
	if s.Type != "" {
		return s.Type
	}
	for _, t := range s.Types {
		if t != "null" {
			return t
		}
	}
	return ""
}
