package mcp

// Internals the external tests (package mcp_test, which run a whole daemon
// and so cannot be in this package: the daemon imports it) check against.
const (
	CodeForbidden = codeForbidden
	MaxBodyBytes  = maxBodyBytes
)
