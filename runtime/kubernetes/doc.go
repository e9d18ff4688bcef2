// Package kubernetes is the runtime.Runtime that runs aima's engines on a
// Kubernetes cluster, one Pod per container (per run of a service):
//
//   - CreateContainer creates the Pod held back by a scheduling gate (a Pod
//     has no "created, not started" state; the gate gives it one that
//     survives a daemon restart), StartContainer lifts the gate and waits
//     for the engine's process to start, failing at once with the kubelet's
//     message when the image cannot be pulled;
//   - restartPolicy Never: aima's restart policy stays the one mechanism;
//   - labels as on Docker (aima.managed, aima.service, aima.run, aima.store,
//     ...), each also kept as an annotation for values a label cannot hold;
//   - GPUs as resources.limits["nvidia.com/gpu"] with the nvidia.com/gpu
//     toleration (the node's device plugin picks the devices);
//   - one watch (informer) of aima's Pods and one of the namespace's Pod
//     events for the whole daemon, never one per service: Events derives
//     create/start/oom/die/destroy from Pod changes and reports the
//     scheduler's and kubelet's steps (Scheduled, FailedScheduling with the
//     scheduler's message, Pulling, Pulled, pull failures, Created,
//     Started) as ActionProgress; Inspect and List read the watch's cache;
//   - how a Pod ended is typed (runtime.Reason: OOM killed, evicted,
//     deleted behind aima's back, node lost);
//   - logs from pods/log, read in the caller's goroutine like Docker's;
//   - the engine's port is published on the daemon's host at the spec's
//     host IP and port (see publisher), reaching the Pod by its IP or
//     through the API server's Pod proxy.
package kubernetes
