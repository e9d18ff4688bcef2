// Package deploy holds what runs aima in a cluster: the Helm chart
// (helm/aima, with the store's CRD in helm/aima/crds). Its test renders the
// chart with the Helm SDK and has the API server of the test cluster
// accept every object (server-side dry run).
package deploy_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	authv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"aima/cluster"
	"aima/config"
	"aima/internal/testenv/kube"
	"aima/runtime/kubernetes"
	"aima/state/kubestore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kube.StopShared()
	os.Exit(code)
}

// render renders the chart for a release in ns with vals.
func render(t *testing.T, ns string, vals map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(filepath.Join("helm", "aima"))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := util.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: "r", Namespace: ns, IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Render(chrt, rv)
}

// objects splits rendered templates into objects.
func objects(t *testing.T, out map[string]string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for name, text := range out {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(text, "\n---") {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			if len(m) > 0 {
				objs = append(objs, &unstructured.Unstructured{Object: m})
			}
		}
	}
	return objs
}

func TestChartRendersAndTheAPIServerTakesIt(t *testing.T) {
	c := kube.Shared(t)
	c.InstallCRDs(t) // the chart's crds/
	ns := c.Namespace(t)
	if _, err := render(t, ns, nil); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("rendered without a token: %v", err)
	}
	out, err := render(t, ns, values(nil))
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, out)
	kinds := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		kinds[o.GetKind()] = o
	}
	for _, k := range []string{"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Secret", "Deployment", "Service"} {
		if kinds[k] == nil {
			t.Errorf("no %s rendered", k)
		}
	}
	// The config the replicas read is a valid aima config: the API
	// server's store, leader election on, in the release's namespace.
	raw, _, _ := unstructured.NestedString(kinds["ConfigMap"].Object, "data", "aima.yaml")
	cfg := config.Default()
	if err := config.Parse([]byte(raw), &cfg); err != nil {
		t.Fatalf("rendered config: %v\n%s", err, raw)
	}
	if cfg.Store != config.StoreKubernetes || cfg.Runtime != config.RuntimeKubernetes || !cfg.Cluster.LeaderElection.Enabled ||
		cfg.Kubernetes.Namespace != ns || !cfg.Kubernetes.InCluster {
		t.Errorf("rendered config: %+v", cfg)
	}
	d := kinds["Deployment"]
	if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != "2" {
		t.Errorf("replicas %v, want 2", n)
	}
	ctr, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	sc, _, _ := unstructured.NestedBool(ctr[0].(map[string]any), "securityContext", "readOnlyRootFilesystem")
	if !sc {
		t.Error("the container's root filesystem is not read-only")
	}

	// The guard answers the Service's DNS names.
	svc := kinds["Service"].GetName()
	for _, h := range []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"} {
		if !slices.Contains(cfg.AllowedHosts, h) {
			t.Errorf("allowed_hosts %v lacks %s", cfg.AllowedHosts, h)
		}
	}
	if kinds["ServiceMonitor"] != nil {
		t.Error("a ServiceMonitor rendered by default")
	}
	dryRun(t, c, ns, objs)
}

// dryRun has the API server take every object (server-side apply, dry
// run, unknown or duplicate fields refused).
func dryRun(t *testing.T, c *kube.Cluster, ns string, objs []*unstructured.Unstructured) {
	t.Helper()
	dc, err := dynamic.NewForConfig(c.Rest)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(c.Rest)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, o := range objs {
		m, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			t.Fatalf("%s: %v", o.GetKind(), err)
		}
		var ri dynamic.ResourceInterface = dc.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dc.Resource(m.Resource).Namespace(ns)
		}
		data, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		force := true
		_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
			FieldManager: "aima-chart-test", DryRun: []string{metav1.DryRunAll}, Force: &force, FieldValidation: "Strict"})
		if err != nil {
			t.Errorf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// values is the chart's values for the tests: a token, and more.
func values(more map[string]any) map[string]any {
	v := map[string]any{"token": map[string]any{"value": "s3cret"}}
	maps.Copy(v, more)
	return v
}

// The ServiceMonitor (values serviceMonitor.enabled) scrapes /metrics
// with the token of the release, and the API server takes it with the
// Prometheus Operator's CRD installed.
func TestChartServiceMonitor(t *testing.T) {
	c := kube.Shared(t)
	c.InstallCRDs(t)
	c.InstallCRDFiles(t, filepath.Join("testdata", "servicemonitors.monitoring.coreos.com.yaml"))
	ns := c.Namespace(t)
	out, err := render(t, ns, values(map[string]any{"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}}}))
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, out)
	var sm *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "ServiceMonitor" {
			sm = o
		}
	}
	if sm == nil {
		t.Fatal("no ServiceMonitor rendered")
	}
	if sm.GetLabels()["release"] != "prom" {
		t.Errorf("ServiceMonitor labels %v lack the values' labels", sm.GetLabels())
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("endpoints %v", eps)
	}
	ep := eps[0].(map[string]any)
	secret, _, _ := unstructured.NestedString(ep, "authorization", "credentials", "name")
	if ep["path"] != "/metrics" || ep["port"] != "http" || secret != "r-aima-token" {
		t.Errorf("endpoint %v: want /metrics on port http with the token of Secret r-aima-token", ep)
	}
	dryRun(t, c, ns, objs)
}

// rbacRules reads the rules of the rendered kind (Role or ClusterRole)
// as "group resource[/subresource] verb" lines.
func rbacRules(t *testing.T, objs []*unstructured.Unstructured, kind string) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		if o.GetKind() != kind {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for _, r := range rules {
			m := r.(map[string]any)
			strs := func(k string) []string {
				l, _, _ := unstructured.NestedStringSlice(m, k)
				return l
			}
			for _, g := range strs("apiGroups") {
				for _, res := range strs("resources") {
					for _, v := range strs("verbs") {
						out = append(out, g+" "+res+" "+v)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// permLines writes permissions as rbacRules does.
func permLines(ps ...[]authv1.ResourceAttributes) []string {
	var out []string
	for _, l := range ps {
		for _, p := range l {
			res := p.Resource
			if p.Subresource != "" {
				res += "/" + p.Subresource
			}
			out = append(out, p.Group+" "+res+" "+p.Verb)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// The chart's Role grants exactly what the runtime, the store and the
// election use in the namespace, and its ClusterRole exactly what GPU
// placement reads cluster-wide: the lists are the packages' own
// (kubernetes.Permissions, kubestore.Permissions, cluster.Permissions),
// the ones `aima doctor` checks.
func TestChartRBACIsWhatAimaUses(t *testing.T) {
	for _, endpoint := range []string{"auto", "pod_ip", "proxy"} {
		for _, clusterWide := range []bool{true, false} {
			out, err := render(t, "ns", values(map[string]any{
				"config": map[string]any{"kubernetes": map[string]any{"endpoint": endpoint}},
				"rbac":   map[string]any{"clusterWide": clusterWide},
			}))
			if err != nil {
				t.Fatal(err)
			}
			objs := objects(t, out)
			// In the cluster, auto is pod_ip.
			rtEndpoint := endpoint
			if endpoint == "auto" {
				rtEndpoint = kubernetes.EndpointPodIP
			}
			namespaced, wide := kubernetes.Permissions(rtEndpoint)
			if got, want := rbacRules(t, objs, "Role"), permLines(namespaced, kubestore.Permissions, cluster.Permissions); !slices.Equal(got, want) {
				t.Errorf("endpoint %s: the Role grants\n%s\nthe code uses\n%s", endpoint, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			want := permLines(wide)
			if !clusterWide {
				want = nil
			}
			if got := rbacRules(t, objs, "ClusterRole"); !slices.Equal(got, want) {
				t.Errorf("rbac.clusterWide %v: the ClusterRole grants %v, want %v", clusterWide, got, want)
			}
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.GetKind()]++
			}
			if clusterWide != (kinds["ClusterRoleBinding"] == 1) {
				t.Errorf("rbac.clusterWide %v: %d ClusterRoleBindings", clusterWide, kinds["ClusterRoleBinding"])
			}
		}
	}
}
