package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"aima/cli"
	"aima/errs"
	"aima/internal/testenv"
	"aima/internal/testenv/fakesmi"
	"aima/services"
	"aima/tools"
)

// Hostile nvidia-smi output and model files, through a real daemon and
// every front-end: the fake nvidia-smi replays what a broken driver (or a
// stand-in on PATH) prints.

// hostileSMI is a query-gpu output with impossible figures: GPU 0 has no
// used memory and a NaN power draw, GPU 1 a total of 2^63-1 MiB and an
// infinite power draw.
const hostileSMI = "0, GPU-00000000-0000-4000-8000-000000000000, NVIDIA H100 80GB HBM3, 81920, [N/A], 81920, 0, 30, NaN, 580.95.05, 9.0, Disabled\n" +
	"1, GPU-00000000-0000-4000-8000-000000000001, NVIDIA H100 80GB HBM3, 9223372036854775807, 0, 81920, 0, 30, inf, 580.95.05, 9.0, Disabled\n"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runCLI runs `aima <args>` against the daemon and returns its exit code
// and output.
func runCLI(t *testing.T, url string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := cli.Run(t.Context(), append([]string{"aima", "--addr", strings.TrimPrefix(url, "http://")}, args...),
		cli.IO{Stdout: &out, Stderr: &out, Stdin: strings.NewReader("")})
	return code, out.String()
}

// rpc posts one JSON-RPC call to /rpc and returns the raw response.
func rpc(t *testing.T, url, method string) map[string]json.RawMessage {
	t.Helper()
	resp, err := http.Post(url+"/rpc", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return out
}

func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// Unknown used memory, NaN and infinite power draws and a total that
// would overflow: doctor, gpu list (HTTP, JSON-RPC, CLI) and /metrics all
// answer, with the impossible figures unknown and named.
func TestGPUImpossibleFiguresOnEveryFrontEnd(t *testing.T) {
	p, fake := newInprocFakeSMI(t, fakesmi.Spec{QueryGPUFile: writeFile(t, "query.csv", hostileSMI)})

	var doc tools.DoctorOutput
	p.call(t, "system_doctor", struct{}{}, &doc)
	if len(doc.GPUs) != 2 || !strings.Contains(doc.GPUs[0], "n/a used") || !strings.Contains(doc.GPUs[0], `power.draw="NaN"`) {
		t.Errorf("doctor gpus %q", doc.GPUs)
	}
	if code, out := runCLI(t, p.URL, "doctor"); code != 0 {
		t.Errorf("aima doctor: exit %d: %s", code, out)
	}

	code, body := httpGet(t, p.URL+"/api/gpu/list")
	var list tools.GPUListOutput
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || list.Total != 2 {
		t.Fatalf("GET /api/gpu/list: %d %v: %s", code, err, body)
	}
	d0, d1 := list.Items[0], list.Items[1]
	if d0.PowerW != nil || d0.MemoryUsedBytes != nil || !d0.MemoryKnown() || !slices.Contains(d0.InvalidFields, `power.draw="NaN"`) {
		t.Errorf("GPU 0 %+v", d0)
	}
	if d1.MemoryTotalBytes != nil || d1.PowerW != nil || len(d1.InvalidFields) != 2 {
		t.Errorf("GPU 1 %+v", d1)
	}
	if res := rpc(t, p.URL, "gpu.list"); res["error"] != nil || !bytes.Contains(res["result"], []byte(`"invalid_fields"`)) {
		t.Errorf("JSON-RPC gpu.list: %s %s", res["error"], res["result"])
	}
	if code, out := runCLI(t, p.URL, "gpu", "list"); code != 0 || !strings.Contains(out, "n/a") {
		t.Errorf("aima gpu list: exit %d: %s", code, out)
	}

	code, metrics := httpGet(t, p.URL+"/metrics")
	gpuLines := grepLines(metrics, "aima_gpu_")
	if code != 200 || strings.Count(gpuLines, "aima_gpu_memory_total_bytes{") != 1 || strings.Contains(gpuLines, "e+18") || !strings.Contains(gpuLines, "aima_gpu_inventory_up 1") {
		t.Errorf("/metrics %d:\n%s", code, gpuLines)
	}

	// Two rows for one GPU: the read is refused, the inventory not trusted.
	fake.Set(t, fakesmi.Spec{QueryGPUFile: writeFile(t, "dup.csv", strings.SplitAfter(hostileSMI, "\n")[0]+
		strings.Replace(strings.SplitAfter(hostileSMI, "\n")[0], "0, GPU", "1, GPU", 1))})
	if err := p.try(t, "gpu_list", struct{}{}, nil, nil); !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "appears on rows 1 and 2") {
		t.Errorf("duplicate UUID: %v", err)
	}

	// An nvidia-smi that prints without end: cut off, with the reason;
	// /metrics still answers.
	fake.Set(t, fakesmi.Spec{Mode: fakesmi.ModeFlood})
	if err := p.try(t, "gpu_list", struct{}{}, nil, nil); !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "printed more than 4.0 MiB") {
		t.Errorf("flood: %v", err)
	}
	if code, metrics := httpGet(t, p.URL+"/metrics"); code != 200 || !bytes.Contains(metrics, []byte("aima_gpu_inventory_up 0")) {
		t.Errorf("/metrics during a flood %d:\n%s", code, grepLines(metrics, "aima_gpu_"))
	}
}

func grepLines(b []byte, prefix string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// nestedArrayGGUF is the 65-byte file of the report (a metadata key
// holding an array of arrays): the GGUF parser panicked on it inside the
// start's schedule phase and took the daemon down.
func nestedArrayGGUF() []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("GGUF")
	for _, v := range []any{uint32(3), uint64(0), uint64(1), uint64(1)} {
		w(v)
	}
	b.WriteString("x")
	for _, v := range []any{uint32(9), uint32(9), uint64(1), uint32(4), uint64(1), uint32(0)} {
		w(v)
	}
	return b.Bytes()
}

// The GGUF of the report through a real daemon: model add, model fit and a
// start on a GPU all answer, and the daemon lives. One GPU named twice is
// refused at create.
func TestGPUHostileModelAndDeviceList(t *testing.T) {
	p := newInprocGPUs(t, testenv.TwoGPUs())
	path := writeFile(t, "nest1.gguf", string(nestedArrayGGUF()))
	modelID := p.addModel(t, path)

	var fit services.FitResult
	p.call(t, "model_fit", map[string]any{"model_id": modelID, "engine_type": "vllm", "gpus": "1"}, &fit)
	if !strings.Contains(strings.Join(fit.Estimate.Notes, "; "), "GGUF header unreadable") || !fit.Fits {
		t.Errorf("fit %+v", fit)
	}
	s := p.createService(t, tools.ServiceCreateInput{ModelID: modelID, GPUs: "1"})
	_, _, _ = p.startWait(t, s.ID, 120)
	got := p.status(t, s.ID)
	if got.GPULease == nil && got.Phase == services.PhaseSchedule {
		t.Errorf("start: %s in %s: %s", got.Status, got.Phase, got.Reason)
	}
	if code, _ := httpGet(t, p.URL+"/health"); code != 200 {
		t.Fatalf("health %d after the start", code)
	}

	_, err := p.c.Call(t.Context(), "service_create", tools.ServiceCreateInput{ModelID: p.modelID, EngineType: "vllm", GPUs: "device=0," + fakesmi.UUIDOf(0)}, nil)
	if !errs.Is(err, errs.InvalidArgument) || errs.FieldOf(err) != "gpus" || !strings.Contains(err.Error(), "are the same GPU") {
		t.Errorf("device=0,<uuid of 0>: %v", err)
	}
	if code, out := runCLI(t, p.URL, "service", "create", "--model-id", p.modelID, "--engine-type", "vllm", "--gpus", "device=1,"+strings.ToUpper(fakesmi.UUIDOf(1))); code == 0 || !strings.Contains(out, "same GPU") {
		t.Errorf("CLI: exit %d: %s", code, out)
	}
}
