package kubernetes

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The events cache keeps what onEvent reads, and nothing else.
func TestSlimEventKeepsWhatOnEventReads(t *testing.T) {
	at := metav1.NewTime(time.Unix(1_800_000_000, 0))
	in := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "ns", UID: "u", ResourceVersion: "7",
			Annotations: map[string]string{"a": "b"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p", UID: "pu", FieldPath: "spec.containers{engine}"},
		Reason:         "Pulling", Message: "Pulling image", LastTimestamp: at, EventTime: metav1.NewMicroTime(at.Time),
		Source: corev1.EventSource{Component: "kubelet", Host: "n1"}, Count: 3,
	}
	out, err := slimEvent(in)
	if err != nil {
		t.Fatal(err)
	}
	e := out.(*corev1.Event)
	if e.Name != "e" || e.Namespace != "ns" || e.UID != "u" || e.ResourceVersion != "7" ||
		e.InvolvedObject.Kind != "Pod" || e.InvolvedObject.Name != "p" || e.InvolvedObject.UID != "pu" ||
		e.Reason != "Pulling" || e.Message != "Pulling image" || !e.LastTimestamp.Equal(&at) || e.EventTime.IsZero() {
		t.Errorf("slimEvent lost what onEvent reads: %+v", e)
	}
	if e.Annotations != nil || e.ManagedFields != nil || e.Source.Host != "" || e.Count != 0 || e.InvolvedObject.FieldPath != "" {
		t.Errorf("slimEvent kept more than onEvent reads: %+v", e)
	}
	if o, _ := slimEvent("not an event"); o != "not an event" {
		t.Errorf("a tombstone or other object must pass unchanged: %v", o)
	}
}

// aima's Pods cache keeps what the runtime reads: every view of a Pod the
// runtime takes is the same on the slimmed copy as on the API server's.
func TestSlimManagedPodKeepsWhatTheRuntimeReads(t *testing.T) {
	at := metav1.NewTime(time.Unix(1_800_000_000, 0))
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "9", CreationTimestamp: at,
			DeletionTimestamp: &at,
			Labels:            map[string]string{"aima.managed": "true", "aima.service": "s1"},
			Annotations: map[string]string{annHostPort: "31000", annContainerPort: "8000", annHostIP: "127.0.0.1",
				annLabelPrefix + "aima.model": "org/name", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.PodSpec{NodeName: "n1", SchedulingGates: []corev1.PodSchedulingGate{{Name: startGate}},
			Containers: []corev1.Container{{Name: containerName, Image: "img:1", Args: []string{"--x"},
				Env: []corev1.EnvVar{{Name: "A", Value: "b"}}, VolumeMounts: []corev1.VolumeMount{{Name: "dshm", MountPath: "/dev/shm"}}}},
			Volumes:     []corev1.Volume{{Name: "dshm"}},
			Tolerations: []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists}}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "low on memory", PodIP: "10.0.0.7",
			HostIP: "192.0.2.1", StartTime: &at,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", Message: "line 1\nline 2\n", StartedAt: at, FinishedAt: at}}}}},
	}
	out, err := slimManagedPod(full.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	slim := out.(*corev1.Pod)
	if !reflect.DeepEqual(stateOf(slim), stateOf(full)) {
		t.Errorf("stateOf differs:\nslim %+v\nfull %+v", stateOf(slim), stateOf(full))
	}
	if !reflect.DeepEqual(labelsOf(slim), labelsOf(full)) || gated(slim) != gated(full) || ended(slim) != ended(full) {
		t.Errorf("labels, gate or end differ: %v %v", labelsOf(slim), labelsOf(full))
	}
	for key, v := range labelsOf(full) {
		if labelOf(slim, key) != v || labelOf(full, key) != v {
			t.Errorf("labelOf(%q) = %q on the slim Pod, %q on the full one; labelsOf says %q", key, labelOf(slim, key), labelOf(full, key), v)
		}
	}
	m1, ok1 := unschedulable(slim)
	m2, ok2 := unschedulable(full)
	r1, s1 := endReason(slim)
	r2, s2 := endReason(full)
	d1, e1 := deleteReason(slim)
	d2, e2 := deleteReason(full)
	if m1 != m2 || ok1 != ok2 || r1 != r2 || s1 != s2 || d1 != d2 || e1 != e2 || slim.Status.PodIP != full.Status.PodIP ||
		slim.Spec.NodeName != "n1" || slim.UID != "u" || slim.ResourceVersion != "9" {
		t.Errorf("the scheduler's verdict, the end's reason or the address differ: %+v", slim)
	}
	c := slim.Spec.Containers[0]
	if slim.ManagedFields != nil || slim.Spec.Volumes != nil || slim.Spec.Tolerations != nil || c.Args != nil || c.Env != nil ||
		c.VolumeMounts != nil || slim.Status.HostIP != "" || slim.Status.StartTime != nil || len(slim.Annotations) != 4 {
		t.Errorf("slimManagedPod kept more than the runtime reads: %+v", slim)
	}
	if o, _ := slimManagedPod("not a pod"); o != "not a pod" {
		t.Errorf("a tombstone or other object must pass unchanged: %v", o)
	}
}
