package inference

import (
	"slices"

	"github.com/tidwall/gjson"

	"aima/errs"
)

// maxNesting bounds how deep a request body may nest arrays and objects.
// gjson's validation recurses once per level, and a 30 MB body of "[" (under
// max_body) overflowed the goroutine stack: a fatal error no recover
// catches, which took the daemon down. Real requests nest a dozen levels
// (a tool's JSON schema perhaps a few dozen).
const maxNesting = 512

// nesting is the deepest nesting of arrays and objects in body, counted
// outside strings, stopping once it passes maxNesting.
func nesting(body []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case inString:
			if c == '\\' {
				i++ // skip the escaped byte
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > maxNesting {
					return deepest
				}
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// checkKeys refuses a body that is not a JSON object, or that names a key
// twice at its top level (or in stream_options, which aima reads too):
// aima reads the first "model" and "stream", engines' parsers the last, so
// {"model":"a","model":"b"} would be routed to a's service and answered as
// b. No reading of such a body is the right one: it is refused.
func checkKeys(body []byte) error {
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return errs.Invalid("body", "the request body must be a JSON object")
	}
	if k := duplicateKey(root); k != "" {
		return errs.Invalid(k, "the request body has the key %q more than once; send each key once", k)
	}
	if so := root.Get("stream_options"); so.IsObject() {
		if k := duplicateKey(so); k != "" {
			return errs.Invalid("stream_options."+k, "stream_options has the key %q more than once; send each key once", k)
		}
	}
	return nil
}

// duplicateKey is the first key the object holds twice ("" if none), as
// decoded (so "model" and "\u006dodel" are the same key).
func duplicateKey(obj gjson.Result) string {
	var seen []string // a request has a dozen keys: a scan beats a map
	dup := ""
	obj.ForEach(func(k, _ gjson.Result) bool {
		if slices.Contains(seen, k.Str) {
			dup = k.Str
			return false
		}
		seen = append(seen, k.Str)
		return true
	})
	return dup
}
