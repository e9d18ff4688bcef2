package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"aima/internal/testenv"
)

// BenchmarkStartOverheadPerEngine is BenchmarkStartOverhead for each
// simulator personality: `aima service start --wait` against `docker run
// -d` of the same image with the engine's own command line, then polling
// the engine's health endpoint every 10 ms until 200 (the engine's own
// readiness: vLLM's port opens when ready, SGLang's /health is 503 until
// its warmup, llama-server's 503 until loaded). The metric is the ratio of
// the medians, per engine.
func BenchmarkStartOverheadPerEngine(b *testing.B) {
	testenv.RequireDocker(b)
	image := testenv.EngineSimImage(b)
	daemon := testenv.StartDaemon(b, testenv.DaemonOptions{Config: testenv.SimConfig(b, testenv.SimConfigOptions{Image: image})})
	hf := testenv.MakeModel(b, "bench-hf")
	gguf := testenv.MakeGGUF(b, "bench-gguf", testenv.GGUFOptions{})
	for _, e := range []struct {
		engine, model, mount string
		port                 int
		args                 []string
	}{
		{"vllm", hf, "/models/x", 8000, []string{"--model", "/models/x"}},
		{"sglang", hf, "/models/x", 30000, []string{"python3", "-m", "sglang.launch_server", "--model-path", "/models/x", "--host", "0.0.0.0", "--port", "30000"}},
		{"llamacpp", gguf, "/models/" + filepath.Base(gguf), 8080, []string{"-m", "/models/" + filepath.Base(gguf), "--host", "0.0.0.0", "--port", "8080"}},
	} {
		b.Run(e.engine, func(b *testing.B) {
			var model struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(daemon.MustCLI(b, "model", "add", "--path", e.model, "-o", "json").Stdout), &model); err != nil || model.ID == "" {
				b.Fatalf("model add: %v %+v", err, model)
			}
			label := testenv.UniqueName(b)
			testenv.RemoveContainersWithLabel(b, "aima.bench", label)
			viaAima := func(i int) time.Duration {
				var s struct {
					ID string `json:"id"`
				}
				out := daemon.MustCLI(b, "service", "create", "--model-id", model.ID, "--engine-type", e.engine, "--name", fmt.Sprintf("ovh-%s-%d", e.engine, i), "-o", "json").Stdout
				if err := json.Unmarshal([]byte(out), &s); err != nil || s.ID == "" {
					b.Fatalf("service create: %v: %s", err, out)
				}
				testenv.RemoveContainersWithLabel(b, "aima.service", s.ID)
				t0 := time.Now()
				daemon.MustCLI(b, "service", "start", s.ID, "--wait", "--timeout", "120")
				d := time.Since(t0)
				daemon.MustCLI(b, "service", "delete", s.ID)
				return d
			}
			viaDocker := func(i int) time.Duration {
				port := testenv.FreePort(b)
				name := fmt.Sprintf("%s-%d", label, i)
				args := append([]string{"run", "-d", "--name", name, "--label", "aima.bench=" + label,
					"-p", fmt.Sprintf("127.0.0.1:%d:%d", port, e.port), "--shm-size", "1g",
					"-e", "SIM_TIME_SCALE=" + testenv.SimTimeScale, "-v", e.model + ":" + e.mount + ":ro", image}, e.args...)
				t0 := time.Now()
				runCmd(b, "docker", args...)
				if !pollHealthy(fmt.Sprintf("http://127.0.0.1:%d/health", port), 10*time.Millisecond, 2*time.Minute) {
					b.Fatalf("plain docker run of %s as %s never answered /health", image, e.engine)
				}
				d := time.Since(t0)
				runCmd(b, "docker", "rm", "-f", name)
				return d
			}
			var aimaT, dockerT []time.Duration
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					aimaT = append(aimaT, viaAima(i))
					dockerT = append(dockerT, viaDocker(i))
				} else {
					dockerT = append(dockerT, viaDocker(i))
					aimaT = append(aimaT, viaAima(i))
				}
			}
			ma, md := testenv.Median(aimaT), testenv.Median(dockerT)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(ma)/float64(md), "ratio")
			b.ReportMetric(testenv.Ms(ma), "ms-aima")
			b.ReportMetric(testenv.Ms(md), "ms-docker")
			b.Logf("%s: aima start --wait: %v\ndocker run + poll: %v", e.engine, aimaT, dockerT)
		})
	}
}
