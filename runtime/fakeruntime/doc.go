// Package fakeruntime is an in-memory runtime.Runtime for unit tests: no
// Docker, no images, but containers that behave like engines. A container
// runs a Script (log lines over time on stdout and stderr, becoming healthy,
// exiting with a code, being OOM-killed, hanging, wedging), and its "engine"
// really serves HTTP on the published loopback host port, so a caller's own
// readiness and liveness probes work unchanged: 200 while the script says
// healthy, 503 otherwise, nothing once the process has ended.
//
// Around the containers it keeps what a Docker engine keeps: Docker-like
// events (create, start, oom, kill, die, stop, destroy, with the container's
// labels) to subscribers with label filters and replay from a time; logs with
// follow, tail and since; inspect and list by labels (the list, like Docker's,
// reports CreatedAt to the second and no OOM flag); local images and pulls
// with progress or failure.
//
// Tests steer it three ways:
//   - scripts, chosen per container by labels at create (SetScript);
//   - outside actions on a container, as a person with the docker CLI or the
//     process itself would (Exit, Kill, OOMKill, Log, SetHealthy,
//     RemoveOutside);
//   - faults on the API: one operation failing or hanging (Inject), or the
//     whole API cut (Cut, Restore): every call is errs.Unavailable and every
//     event, log and wait stream ends with it, while the containers go on
//     (and their events are replayed to a later subscription with Since).
//
// Calls counts API calls per operation and WaitFor blocks until a container
// matches a condition, so tests wait on facts instead of sleeping.
//
// Every goroutine the fake starts ends with its stream's context or with
// Close; call Close when the test ends.
package fakeruntime
