// Package schemas holds the committed JSON Schemas of every aima operation's
// input and output (<name>.input.json, <name>.output.json), generated from
// the Go types in tools/. The test in this package fails when the code and
// the committed files disagree; `make schemas` regenerates them.
package schemas

import (
	"embed"
)

// Files are the committed schema files, for serving and for clients.
//
//go:embed *.json
var Files embed.FS
