package kubernetes

import (
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
