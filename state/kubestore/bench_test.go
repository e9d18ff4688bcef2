package kubestore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
	"aima/state"
)

// BenchmarkList: a List of 1,000 service records (about 1 KiB each) from
// the API server's store (its watched cache) against the same from bbolt,
// measured in the same run. Reports the medians in µs and their ratio.
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	ks, bs := bothStores(b)
	pad := strings.Repeat("x", 900)
	var ops []state.Op
	for i := range 1000 {
		ops = append(ops, state.Op{Key: fmt.Sprintf("services/svc-%04d", i), Value: fmt.Appendf(nil, `{"id":"svc-%04d","pad":%q}`, i, pad)})
	}
	for _, s := range []state.Store{ks, bs} {
		if err := state.Apply(ctx, s, ops); err != nil {
			b.Fatal(err)
		}
	}
	list := func(s state.Store) time.Duration {
		t0 := time.Now()
		es, err := s.List(ctx, "services/")
		if err != nil || len(es) != 1000 {
			b.Fatalf("list: %d entries, %v", len(es), err)
		}
		return time.Since(t0)
	}
	var kt, bt []time.Duration
	b.ResetTimer()
	for b.Loop() {
		kt = append(kt, list(ks))
		bt = append(bt, list(bs))
	}
	km, bm := testenv.Median(kt), testenv.Median(bt)
	b.ReportMetric(float64(km.Microseconds()), "us-list-kube")
	b.ReportMetric(float64(bm.Microseconds()), "us-list-bolt")
	b.ReportMetric(float64(km)/float64(bm), "x-kube-bolt")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCreate: one service record (about 1 KiB) created in the API
// server's store (a create of its object, answered once etcd has it) and in
// bbolt (a transaction, fsynced), alternately in the same run. Reports the
// medians in µs, the creates a second one writer gets from each, and their
// ratio: what `service create` costs in the store (the rest of a create, the
// name and port checks and the record cache, is the same code on both).
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	ks, bs := bothStores(b)
	pad := strings.Repeat("x", 900)
	create := func(s state.Store, i int) time.Duration {
		key := fmt.Sprintf("services/svc-%06d", i)
		t0 := time.Now()
		if _, err := s.Put(ctx, key, fmt.Appendf(nil, `{"id":"svc-%06d","pad":%q}`, i, pad), 0); err != nil {
			b.Fatalf("create %s: %v", key, err)
		}
		return time.Since(t0)
	}
	var kt, bt []time.Duration
	i := 0
	for b.Loop() {
		kt = append(kt, create(ks, i))
		bt = append(bt, create(bs, i))
		i++
	}
	km, bm := testenv.Median(kt), testenv.Median(bt)
	b.ReportMetric(float64(km.Microseconds()), "us-create-kube")
	b.ReportMetric(float64(bm.Microseconds()), "us-create-bolt")
	b.ReportMetric(float64(time.Second)/float64(km), "creates/s-kube")
	b.ReportMetric(float64(time.Second)/float64(bm), "creates/s-bolt")
	b.ReportMetric(float64(km)/float64(bm), "x-kube-bolt")
	b.ReportMetric(0, "ns/op")
}

// bothStores opens the two stores a benchmark compares: one in the API
// server (a namespace of the shared test cluster) and a bbolt file, closed
// when the benchmark ends.
func bothStores(b *testing.B) (state.Store, state.Store) {
	b.Helper()
	c := kube.Shared(b)
	c.InstallCRDs(b)
	ks := open(b, c, c.Namespace(b))
	bs, err := state.OpenBolt(filepath.Join(b.TempDir(), "aima.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	return ks, bs
}
