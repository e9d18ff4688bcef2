package k8s

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"aima/internal/testenv"
	"aima/internal/testenv/kube"
)

// Log throughput on the real node, against `kubectl logs` and a direct read
// of pods/log (client-go, in the benchmark's process) of the same Pod, in
// the same run:
// a Pod of internal/testenv/testprog prints benchLines lines of
// benchLineSize bytes, labelled as the container of a service that was
// created (never started), so aima serves its logs like any service's.
const (
	benchLines    = 200000
	benchLineSize = 100
)

// BenchmarkKubeLogs reads the 200,000-line log of a finished Pod whole,
// alternating `kubectl logs` (the baseline, stdout to /dev/null) with `aima
// service logs --tail -1` (the CLI, through the daemon), then a GET of
// /api/service/logs (HTTP, the JSON document with each line's time) with
// `kubectl logs --timestamps` (its like-for-like baseline), and a direct
// pods/log read in the benchmark's own process (no process start, no
// printing) of each kind. x-kubectl-* and x-direct-*: median baseline time /
// median aima time, so ≥ 1 means at least as fast.
func BenchmarkKubeLogs(b *testing.B) {
	e := setup(b, "pod_ip")
	img := testenv.TestProgImage(b)
	if err := e.node.Import(context.Background(), img); err != nil {
		b.Fatal(err)
	}
	out := e.d.MustCLI(b, "service", "create", "--model-id", "org/flood", "--engine-type", "vllm", "-o", "json").Stdout
	id := testenv.DecodeJSON[svcJSON](b, out).ID
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "flood", Namespace: e.ns,
			Labels: map[string]string{"aima.managed": "true", "aima.service": id, "aima.run": "1"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, DNSPolicy: corev1.DNSDefault, NodeName: e.node.Name,
			Containers: []corev1.Container{{Name: "engine", Image: img, ImagePullPolicy: corev1.PullNever,
				Args: []string{fmt.Sprintf("flood:%d:%d", benchLines, benchLineSize)}}},
		},
	}
	ctx := context.Background()
	pods := e.c.Client.CoreV1().Pods(e.ns)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, "flood", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodSucceeded, nil
	})
	if err != nil {
		b.Fatalf("flood pod did not finish: %v", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	direct := func(times bool) time.Duration {
		t0 := time.Now()
		rc, err := pods.GetLogs("flood", &corev1.PodLogOptions{Container: "engine", Timestamps: times}).Stream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(null, rc)
		rc.Close()
		d := time.Since(t0)
		if err != nil || n < benchLines*benchLineSize {
			b.Fatalf("pods/log: %d bytes, %v", n, err)
		}
		return d
	}
	timed := func(name string, args ...string) time.Duration {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "AIMA_ADDR="+e.d.Addr)
		cmd.Stdout = null
		var errb strings.Builder
		cmd.Stderr = &errb
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
		}
		return time.Since(t0)
	}
	cli := func() time.Duration { return timed(e.d.Bin, "service", "logs", id, "--tail", "-1") }
	bin, err := kube.Binaries(ctx)
	if err != nil {
		b.Fatal(err)
	}
	kubectl := func(args ...string) time.Duration {
		return timed(filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", e.c.Kubeconfig, "-n", e.ns, "logs", "flood", "-c", "engine"}, args...)...)
	}
	httpLogs := func() time.Duration { return e.d.TimeLogs(b, id, benchLines*benchLineSize) }
	var cliT, httpT, kubectlT, kubectlTST, directT, directTST []time.Duration
	for i := 0; i < b.N; i++ {
		if i%2 == 1 {
			cliT = append(cliT, cli())
		}
		kubectlT = append(kubectlT, kubectl())
		if i%2 == 0 {
			cliT = append(cliT, cli())
		}
		httpT = append(httpT, httpLogs())
		kubectlTST = append(kubectlTST, kubectl("--timestamps"))
		directT = append(directT, direct(false))
		directTST = append(directTST, direct(true))
	}
	ratio := func(base, name string, aima, baseT []time.Duration) {
		ma, mb := testenv.Median(aima), testenv.Median(baseT)
		b.ReportMetric(float64(mb)/float64(ma), "x-"+base+"-"+name)
		b.ReportMetric(testenv.Ms(mb), "ms-"+base+"-"+name)
		b.Logf("%s: aima %v, %s %v", name, aima, base, baseT)
	}
	b.ReportMetric(testenv.Ms(testenv.Median(cliT)), "ms-aima-cli")
	b.ReportMetric(testenv.Ms(testenv.Median(httpT)), "ms-aima-t-http")
	ratio("kubectl", "cli", cliT, kubectlT)
	ratio("kubectl", "t-http", httpT, kubectlTST)
	ratio("direct", "cli", cliT, directT)
	ratio("direct", "t-http", httpT, directTST)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(benchLines), "lines")
}
