package kubestore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv/kube"
	"aima/state"
)

// BenchmarkList: a List of 1,000 service records (about 1 KiB each) from
// the API server's store (its watched cache) against the same from bbolt,
// measured in the same run. Reports the medians in µs and their ratio.
func BenchmarkList(b *testing.B) {
	c := kube.Shared(b)
	c.InstallCRDs(b)
	ctx := context.Background()
	ks := open(b, c, c.Namespace(b))
	bs, err := state.OpenBolt(filepath.Join(b.TempDir(), "aima.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
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
	km, bm := median(kt), median(bt)
	b.ReportMetric(float64(km.Microseconds()), "us-list-kube")
	b.ReportMetric(float64(bm.Microseconds()), "us-list-bolt")
	b.ReportMetric(float64(km)/float64(bm), "x-kube-bolt")
	b.ReportMetric(0, "ns/op")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
