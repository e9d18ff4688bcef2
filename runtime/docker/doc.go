// Package docker implements runtime.Runtime on a Docker engine through the
// maintained moby client (github.com/moby/moby/client), not the frozen
// github.com/docker/docker module.
//
// Errors carry errs kinds so that every front-end can report them alike: a
// missing container or image is errs.NotFound, an engine that does not answer
// is errs.Unavailable ("docker engine unavailable: ..."), a name or host port
// already taken is errs.Conflict with Docker's own message kept, and context
// errors are returned wrapped but intact so errs.KindOf still sees them.
//
// Concurrency: a *Docker is safe for concurrent use. Streaming calls (WaitExit,
// Logs, Events) start one goroutine each that ends when the stream ends or the
// caller's context is done; their channels are always closed at the end.
package docker
