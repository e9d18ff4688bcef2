// Package schemas holds the committed JSON Schemas of every aima operation's
// input and output (<name>.input.json, <name>.output.json), generated from
// the Go types in tools/, and a snapshot of each whole tool as MCP's
// tools/list serves it (<name>.tool.json: name, title, description,
// annotations, both schemas and _meta). The test in this package fails when
// the code and the committed files disagree, so a change to what clients
// see shows in review as a diff of these files; `make schemas`
// (UPDATE_SCHEMAS=1) regenerates them.
package schemas

import (
	"embed"
)

// Files are the committed schema files, for serving and for clients.
//
//go:embed *.json
var Files embed.FS
