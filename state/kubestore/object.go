package kubestore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"

	authv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"aima/errs"
	"aima/state"
)

// The custom resource that holds one key of the store
// (deploy/helm/aima/crds/aimarecords.yaml).
const (
	Group    = "aima.dev"
	Version  = "v1alpha1"
	Kind     = "AimaRecord"
	Resource = "aimarecords"
	// CRDName is the CustomResourceDefinition's name.
	CRDName = Resource + "." + Group
)

// Permissions are what the store uses in its namespace: it reads the
// records with a list and a watch (and a get after a conflict) and writes
// them with create, update and delete. The Helm chart's Role grants
// exactly them (deploy/chart_test.go compares).
var Permissions = []authv1.ResourceAttributes{
	{Group: Group, Resource: Resource, Verb: "get"},
	{Group: Group, Resource: Resource, Verb: "list"},
	{Group: Group, Resource: Resource, Verb: "watch"},
	{Group: Group, Resource: Resource, Verb: "create"},
	{Group: Group, Resource: Resource, Verb: "update"},
	{Group: Group, Resource: Resource, Verb: "delete"},
}

// GVR is the records' resource.
var GVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// Labels on every record: the store it belongs to (several stores may
// share a namespace) and its key's first segment (services, models,
// events, ...), for kubectl.
const (
	LabelStore = "aima.dev/store"
	LabelKind  = "aima.dev/kind"
)

// writeAnnotation changes on every write, so every write makes a new
// resourceVersion: the API server skips writes that change nothing, and
// the Store promises a new revision per Put.
const writeAnnotation = "aima.dev/write"

// objectName is the record's object name for key: a readable part made
// of the key (lower case, every other character as "-") and a hash
// of the store name and the exact key, which keeps names unique however
// the readable part folds the key.
func objectName(store, key string) string {
	sum := sha256.Sum256([]byte(store + "\x00" + key))
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 200 {
			break
		}
	}
	readable := strings.Trim(b.String(), "-")
	if readable == "" {
		readable = "k"
	}
	return readable + "-" + hex.EncodeToString(sum[:8])
}

// kindLabel is the key's first segment when it is a valid label value.
func kindLabel(key string) string {
	kind, _, _ := strings.Cut(key, "/")
	if len(kind) == 0 || len(kind) > 63 {
		return ""
	}
	for i, r := range kind {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || i == len(kind)-1 || (r != '-' && r != '_' && r != '.')) {
			return ""
		}
	}
	return kind
}

// newObject is the record for key holding val; rv, when not empty, is the
// resourceVersion the write expects.
func (s *Store) newObject(key string, val []byte, rv string, nonce string) *unstructured.Unstructured {
	spec := map[string]any{"key": key}
	if utf8.Valid(val) {
		spec["value"] = string(val)
	} else {
		spec["data"] = base64.StdEncoding.EncodeToString(val)
	}
	labels := map[string]any{LabelStore: s.name}
	if k := kindLabel(key); k != "" {
		labels[LabelKind] = k
	}
	meta := map[string]any{
		"name": objectName(s.name, key), "namespace": s.ns, "labels": labels,
		"annotations": map[string]any{writeAnnotation: nonce},
	}
	if rv != "" {
		meta["resourceVersion"] = rv
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/" + Version, "kind": Kind, "metadata": meta, "spec": spec,
	}}
}

// entryOf reads a record back; ok is false for an object that is not one
// of the store's records (it is then ignored).
func entryOf(u *unstructured.Unstructured) (state.Entry, bool) {
	key, _, _ := unstructured.NestedString(u.Object, "spec", "key")
	if key == "" {
		return state.Entry{}, false
	}
	rev, err := parseRev(u.GetResourceVersion())
	if err != nil {
		return state.Entry{}, false
	}
	e := state.Entry{Key: key, Rev: rev, Value: []byte{}}
	if v, ok, _ := unstructured.NestedString(u.Object, "spec", "value"); ok {
		e.Value = []byte(v)
	} else if d, ok, _ := unstructured.NestedString(u.Object, "spec", "data"); ok {
		b, err := base64.StdEncoding.DecodeString(d)
		if err != nil {
			return state.Entry{}, false
		}
		e.Value = b
	}
	return e, true
}

// parseRev reads a resourceVersion as a revision. The API server's
// resourceVersions are etcd's revisions: decimal, non-zero and increasing
// across the whole cluster, which is what state.Store promises.
func parseRev(rv string) (uint64, error) {
	rev, err := strconv.ParseUint(rv, 10, 64)
	if err != nil || rev == 0 || rev == state.AnyRev {
		return 0, errs.New(errs.Internal, "state store: resourceVersion %q is not a revision", rv)
	}
	return rev, nil
}
