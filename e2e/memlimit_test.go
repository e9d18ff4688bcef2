package e2e

import (
	"strings"
	"testing"

	"aima/internal/testenv"
)

// TestMemoryLimitOOMKilled: an engine's memory_limit_mib is the container's
// memory limit on Docker; an engine allocating more host memory than that
// (the simulator's SIM_HOST_MEM) is OOM-killed by the kernel and the start
// fails as oom, exit 137 (e2e/k8s checks the same on a Pod).
func TestMemoryLimitOOMKilled(t *testing.T) {
	testenv.RequireDocker(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{MemoryLimitMiB: 96})})
	d.MustCLI(t, "model", "add", "--path", testenv.MakeModel(t, "qwen-mem"))
	s := testenv.DecodeJSON[svcJSON](t, d.MustCLI(t, "service", "create", "--model-id", "qwen-mem", "--engine-type", "vllm",
		"--env", "SIM_HOST_MEM=256MiB", "-o", "json").Stdout)
	testenv.RemoveContainersWithLabel(t, "aima.service", s.ID)
	r := d.CLI(t, "service", "start", s.ID, "--wait", "--timeout", "120")
	if r.Code == 0 {
		t.Fatalf("start of an engine over its memory limit exited 0:\n%s", r.Stderr)
	}
	var st struct {
		Status    string `json:"status"`
		Failure   string `json:"failure"`
		OOMKilled bool   `json:"oom_killed"`
		ExitCode  *int   `json:"exit_code"`
	}
	d.GetJSON(t, "/api/service/status?service_id="+s.ID, &st)
	if st.Status != "failed" || st.Failure != "oom" || !st.OOMKilled || st.ExitCode == nil || *st.ExitCode != 137 {
		t.Fatalf("after the OOM kill: %+v\nstart:\n%s", st, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "OOM killed") {
		t.Errorf("the failed start does not say it ran out of memory:\n%s", r.Stderr)
	}
}
