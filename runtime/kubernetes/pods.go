package kubernetes

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"aima/errs"
	"aima/runtime"
)

// Annotations aima puts on its Pods besides the labels; all begin with
// annPrefix.
const (
	annPrefix        = "aima."
	annHostIP        = "aima.host-ip"        // where the engine port is published on the daemon's host
	annHostPort      = "aima.host-port"      // the published port
	annContainerPort = "aima.container-port" // the engine's port in the Pod
	// annLabelPrefix marks aima's labels kept as annotations: a label value
	// may not hold every value aima labels with (a model reference such as
	// "org/name" has a slash), an annotation may.
	annLabelPrefix = "aima.label/"
)

// startGate holds a created Pod back from the scheduler until StartContainer:
// a Pod has no "created, not started" state of its own, and a scheduling
// gate gives it one that the API server keeps (so a daemon restart between
// the two calls finds the Pod created, as Docker's created container).
const startGate = "aima/start"

// ResourceGPU is the extended resource the NVIDIA device plugin advertises.
const ResourceGPU corev1.ResourceName = "nvidia.com/gpu"

// CreateContainer creates the Pod of one run, held back by the start gate.
func (k *Kube) CreateContainer(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	pod, err := k.podFor(spec)
	if err != nil {
		return "", err
	}
	if err := k.watch(ctx); err != nil {
		return "", err
	}
	created, err := k.createPod(ctx, pod)
	if err != nil {
		return "", classify(err, fmt.Sprintf("create pod %s from image %s", spec.Name, spec.Image))
	}
	// Every later call reads the watch's cache: return once it holds the
	// Pod, so the caller reads its own write.
	err = k.waitPod(ctx, created.Name, func(p *corev1.Pod) (bool, error) {
		return p != nil && p.UID == created.UID, nil
	})
	if err != nil {
		return "", err
	}
	return created.Name, nil
}

// podFor maps a container spec onto a Pod: restartPolicy Never (aima's
// back-off is the one restart mechanism), the spec's labels, image, args
// (appended to the image's entrypoint, as Docker's Cmd), env and port,
// /dev/shm as memory, GPUs as an nvidia.com/gpu limit with the usual
// toleration, and the configured placement and model volume.
func (k *Kube) podFor(spec runtime.ContainerSpec) (*corev1.Pod, error) {
	if msgs := validation.IsDNS1123Subdomain(spec.Name); len(msgs) > 0 {
		return nil, errs.Invalid("name", "pod name %q: %s", spec.Name, strings.Join(msgs, "; "))
	}
	gpus := 0
	switch g := spec.GPUs; {
	case len(g.DeviceIDs) > 0:
		// The GPUs placement leased on spec.Node (or named without an
		// inventory): the node's device plugin picks which.
		gpus = len(g.DeviceIDs)
	case g.All:
		// Without a placement (no GPU node could be read), "all GPUs
		// of the host" has no meaning on a cluster: one GPU.
		gpus = 1
	default:
		gpus = g.Count
	}
	hostIP := spec.HostIP
	if hostIP == "" {
		hostIP = "127.0.0.1"
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: spec.Name, Namespace: k.ns,
			Labels: map[string]string{},
			Annotations: map[string]string{
				annHostIP: hostIP, annHostPort: strconv.Itoa(spec.HostPort), annContainerPort: strconv.Itoa(spec.ContainerPort),
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			SchedulingGates:    []corev1.PodSchedulingGate{{Name: startGate}},
			EnableServiceLinks: new(false),
			NodeSelector:       k.opts.NodeSelector,
			ServiceAccountName: k.opts.ServiceAccount,
			// An engine needs no API credentials unless a service account
			// was configured on purpose.
			AutomountServiceAccountToken: new(k.opts.ServiceAccount != ""),
		},
	}
	for key, v := range spec.Labels {
		pod.Annotations[annLabelPrefix+key] = v
		if len(validation.IsValidLabelValue(v)) == 0 {
			pod.Labels[key] = v
		}
	}
	c := corev1.Container{
		Name:            containerName,
		Image:           spec.Image,
		Args:            spec.Args,
		ImagePullPolicy: corev1.PullIfNotPresent,
		// When the engine fails, the kubelet puts its last lines in the
		// terminated state (at most 80 lines, 2 KiB), so the watch event
		// of the end carries the engine's reason and aima need not read
		// pods/log first (ContainerState.LastOutput).
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	for _, kv := range spec.Env {
		name, val, _ := strings.Cut(kv, "=")
		if gpus > 0 && name == "NVIDIA_VISIBLE_DEVICES" {
			continue // the device plugin sets it to the GPUs it allocated on the node
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: val})
	}
	if spec.ContainerPort > 0 {
		c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: int32(spec.ContainerPort), Protocol: corev1.ProtocolTCP}}
	}
	shm := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
	if spec.ShmSize > 0 {
		shm.SizeLimit = resource.NewQuantity(spec.ShmSize, resource.BinarySI)
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "dshm", VolumeSource: corev1.VolumeSource{EmptyDir: shm}})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "dshm", MountPath: "/dev/shm"})
	k.modelVolumes(pod, &c, spec.Mounts)
	if spec.MemoryLimit > 0 {
		// A limit alone: the request defaults to it.
		c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(spec.MemoryLimit, resource.BinarySI)}
	}
	if gpus > 0 {
		if c.Resources.Limits == nil {
			c.Resources.Limits = corev1.ResourceList{}
		}
		c.Resources.Limits[ResourceGPU] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
	}
	if spec.StopTimeout > 0 {
		pod.Spec.TerminationGracePeriodSeconds = new(graceSeconds(spec.StopTimeout))
	}
	pod.Spec.Tolerations = k.tolerations(gpus > 0)
	if spec.Node != "" {
		k.pinTo(pod, spec.Node)
	}
	pod.Spec.Containers = []corev1.Container{c}
	return pod, nil
}

// modelVolumes mounts the model files: each bind mount of the spec as a
// read-only hostPath of the same path on the node, or the configured claim
// (one directory per model ID) at its mount path.
func (k *Kube) modelVolumes(pod *corev1.Pod, c *corev1.Container, mounts []runtime.Mount) {
	if len(mounts) == 0 {
		return
	}
	if k.opts.ModelVolume == ModelPVC {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "models", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: k.opts.ModelClaim, ReadOnly: true},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "models", MountPath: k.opts.ModelMountPath, ReadOnly: true})
		return
	}
	for i, m := range mounts {
		name := fmt.Sprintf("model-%d", i)
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: m.Source},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: m.Target, ReadOnly: true})
	}
}

// labelsOf returns aima's labels of a Pod: its labels, completed by the
// annotations that keep values a label cannot hold.
func labelsOf(p *corev1.Pod) map[string]string {
	out := make(map[string]string, len(p.Labels))
	for key, v := range p.Labels {
		out[key] = v
	}
	for key, v := range p.Annotations {
		if name, ok := strings.CutPrefix(key, annLabelPrefix); ok {
			out[name] = v
		}
	}
	return out
}

// labelOf is one of labelsOf(p), without building the map: the
// publisher asks it of every Pod on every change of any.
func labelOf(p *corev1.Pod, key string) string {
	if v, ok := p.Annotations[annLabelPrefix+key]; ok {
		return v
	}
	return p.Labels[key]
}

// slimManagedPod keeps of one of aima's Pods what the runtime reads (its
// identity, aima's labels and annotations, node, gate and image, and its
// status), for the watch's cache holds every Pod of every service for as
// long as the daemon runs: the spec the API server completes (volumes,
// the service account's projected token, mounts, env, probes' defaults)
// and the managed fields are most of a Pod, and nothing here reads them.
func slimManagedPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp},
		Spec: corev1.PodSpec{NodeName: p.Spec.NodeName, SchedulingGates: p.Spec.SchedulingGates},
		Status: corev1.PodStatus{Phase: p.Status.Phase, Reason: p.Status.Reason, Message: p.Status.Message,
			Conditions: p.Status.Conditions, PodIP: p.Status.PodIP, ContainerStatuses: p.Status.ContainerStatuses},
	}
	for key, v := range p.Annotations {
		if strings.HasPrefix(key, annPrefix) {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[key] = v
		}
	}
	for _, c := range p.Spec.Containers {
		out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	return out, nil
}

// engineStatus is the status of the engine container, nil before the
// kubelet reported one.
func engineStatus(p *corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == containerName {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// gated reports a Pod still held back by the start gate.
func gated(p *corev1.Pod) bool {
	for _, g := range p.Spec.SchedulingGates {
		if g.Name == startGate {
			return true
		}
	}
	return false
}

// pullFailure returns the kubelet's reason and message when the node
// cannot get the image: these never resolve by waiting long enough to be
// worth a silent wait.
func pullFailure(p *corev1.Pod) (reason, msg string, ok bool) {
	cs := engineStatus(p)
	if cs == nil || cs.State.Waiting == nil {
		return "", "", false
	}
	switch w := cs.State.Waiting; w.Reason {
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable":
		return w.Reason, w.Message, true
	}
	return "", "", false
}

// unschedulable returns the scheduler's message while it cannot place
// the Pod.
func unschedulable(p *corev1.Pod) (string, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Message, true
		}
	}
	return "", false
}

// ended reports a Pod whose engine will not run (again): its container
// terminated, or the Pod failed or succeeded as a whole (evicted, its node
// lost).
func ended(p *corev1.Pod) bool {
	if cs := engineStatus(p); cs != nil && cs.State.Terminated != nil {
		return true
	}
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

// endReason explains how a Pod ended or why it cannot run, as a typed reason
// and the cluster's words.
func endReason(p *corev1.Pod) (runtime.Reason, string) {
	cs := engineStatus(p)
	if cs != nil && cs.State.Terminated != nil && cs.State.Terminated.Reason == "OOMKilled" {
		return runtime.ReasonOOMKilled, "" // the terminated message is the engine's output: LastOutput
	}
	for _, c := range p.Status.Conditions {
		if c.Type != corev1.DisruptionTarget || c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Reason {
		case "DeletionByPodGC", "DeletionByTaintManager":
			return runtime.ReasonNodeLost, c.Message
		case "TerminationByKubelet", "EvictionByEvictionAPI":
			return runtime.ReasonEvicted, c.Message
		}
	}
	if p.Status.Reason == "Evicted" {
		return runtime.ReasonEvicted, p.Status.Message
	}
	if p.Status.Reason == "NodeLost" || p.Status.Reason == "UnexpectedAdmissionError" {
		return runtime.ReasonNodeLost, p.Status.Message
	}
	if reason, msg, ok := pullFailure(p); ok {
		return runtime.ReasonPullError, reason + ": " + msg
	}
	if cs != nil && cs.State.Terminated != nil {
		return "", "" // the terminated message is the engine's output: LastOutput
	}
	return "", p.Status.Message
}

// deleteReason says why a Pod that had not ended was deleted: its node was
// lost (the Pod garbage collector or the taint manager), it was evicted,
// or someone deleted it.
func deleteReason(p *corev1.Pod) (runtime.Reason, string) {
	if r, msg := endReason(p); r == runtime.ReasonNodeLost || r == runtime.ReasonEvicted {
		return r, msg
	}
	return runtime.ReasonDeleted, "pod " + p.Name + " was deleted"
}

// stateOf maps a Pod onto aima's container state.
func stateOf(p *corev1.Pod) runtime.ContainerState {
	st := runtime.ContainerState{
		ID: p.Name, Name: p.Name, Labels: labelsOf(p),
		Status:    runtime.StateCreated,
		CreatedAt: p.CreationTimestamp.Time,
	}
	if len(p.Spec.Containers) > 0 {
		st.Image = p.Spec.Containers[0].Image
	}
	st.HostPort, _ = strconv.Atoi(p.Annotations[annHostPort])
	cs := engineStatus(p)
	switch {
	case cs != nil && cs.State.Terminated != nil:
		t := cs.State.Terminated
		st.Status, st.ExitCode = runtime.StateExited, int(t.ExitCode)
		st.StartedAt, st.FinishedAt = t.StartedAt.Time, t.FinishedAt.Time
		if t.Reason != "ContainerStatusUnknown" { // else the message is the kubelet's, not the engine's
			st.LastOutput = outputLines(t.Message)
		}
	case ended(p):
		st.Status = runtime.StateExited
	case p.DeletionTimestamp != nil:
		st.Status = runtime.StateRemoving
		st.Running = cs != nil && cs.State.Running != nil
	case cs != nil && cs.State.Running != nil:
		st.Status, st.Running = runtime.StateRunning, true
		st.StartedAt = cs.State.Running.StartedAt.Time
	}
	if st.Status == runtime.StateExited || !st.Running {
		st.Reason, st.Message = endReason(p)
		st.OOMKilled = st.Reason == runtime.ReasonOOMKilled
		if st.Reason != "" {
			st.Error = st.Message
		}
	}
	return st
}

// The kubelet's bounds on a termination message taken from the logs
// (FallbackToLogsOnError); a message at the byte bound was cut, so its
// first line may be partial. maxOutputBytes bounds what is read whatever
// the API server sends.
const (
	kubeletOutputBytes = 2048
	maxOutputBytes     = 4096
	maxOutputLines     = 80
)

// outputLines splits a terminated container's message (its last output,
// or what it wrote to its termination-message file) into lines, bounded;
// a line the kubelet's cut made partial is dropped.
func outputLines(msg string) []string {
	if msg == "" {
		return nil
	}
	if len(msg) > maxOutputBytes {
		msg = msg[len(msg)-maxOutputBytes:]
	}
	lines := strings.Split(strings.TrimRight(msg, "\n"), "\n")
	if len(msg) >= kubeletOutputBytes && len(lines) > 1 {
		lines = lines[1:]
	}
	if len(lines) > maxOutputLines {
		lines = lines[len(lines)-maxOutputLines:]
	}
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, "\r")
	}
	return lines
}
