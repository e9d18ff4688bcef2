package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"aima/internal/testenv"
	"aima/tools"
)

// gpuList is gpu_list as a browser's neighbour reads it: POST
// /api/gpu/list.
func gpuList(t *testing.T, d *testenv.DaemonProc) tools.GPUListOutput {
	t.Helper()
	code, body, err := d.Post("/api/gpu/list", struct{}{})
	if err != nil || code != http.StatusOK {
		t.Fatalf("POST /api/gpu/list: %d %v %s", code, err, body)
	}
	var l tools.GPUListOutput
	if err := json.Unmarshal(body, &l); err != nil || len(l.Items) != 2 {
		t.Fatalf("gpu list: %v %s", err, body)
	}
	return l
}

// answerDialog types text into the page's question dialog and answers OK.
func answerDialog(b *browser, text string) {
	b.t.Helper()
	b.waitFor("the question dialog with its field", `document.getElementById('confirm-dialog').open && !document.getElementById('confirm-field').hidden`, 5*time.Second)
	if text != "" {
		b.do("type the reason", 5*time.Second, sendKeys("#confirm-input", text))
	}
	b.click("#confirm-ok")
	b.waitFor("the dialog closed", `!document.getElementById('confirm-dialog').open`, 5*time.Second)
}

// TestGPUsPageCordonAndDrain drives the GPUs page in headless Chromium
// against the built daemon, with the fake nvidia-smi's two 80 GiB GPUs and
// services on the real Docker engine with the simulator: cordoning GPU 1
// from the page with a reason shows it cordoned with the reason, gpu_list
// over HTTP agrees and a start pinned to GPU 1 is refused naming the
// cordon; uncordoning from the page clears it; draining GPU 0 from the page
// shows the drain's steps as they come and its result, and the service
// that ran on GPU 0 runs on GPU 1. The page reads the inventory again when
// a service starts or stops, with no reload.
func TestGPUsPageCordonAndDrain(t *testing.T) {
	chromiumPath(t)
	testenv.RequireDocker(t)
	fake := testenv.FakeNvidiaSMI(t, testenv.TwoGPUs())
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.GPUConfig(t, fake, testenv.SimConfigOptions{})})
	modelID := addModel(t, d, "qwen-tiny")

	b := newBrowser(t, 1280, 800)
	b.navigate(d.URL() + "/ui/#/gpus")
	b.waitFor("the live indicator", `document.getElementById('conn').dataset.state === 'live'`, 20*time.Second)
	b.waitFor("both GPUs listed", `document.querySelectorAll('#gpus tr[data-gpu]').length === 2`, 15*time.Second)
	eval[bool](b, `window.aimaNoReload = true`)
	gpuRow := func(i int) string { return fmt.Sprintf(`document.querySelector('#gpus tr[data-gpu="%d"]')`, i) }

	// A service started from the CLI shows in GPU 0's row.
	mover := createService(t, d, modelID, "mover")
	d.MustCLI(t, "service", "start", mover, "--wait", "--timeout", "120")
	if s := status(t, d, mover); s.GPULease == nil || s.GPULease.Indexes() != "0" {
		t.Fatalf("mover's lease %+v, want GPU 0", s.GPULease)
	}
	b.waitFor("the service holding GPU 0", gpuRow(0)+`.querySelector('.held-by').textContent === 'mover'`, 15*time.Second)

	// Cordon GPU 1 with a reason.
	b.click(`#gpus tr[data-gpu="1"] [data-action=cordon]`)
	answerDialog(b, "fan failing")
	b.waitFor("GPU 1 cordoned with the reason", gpuRow(1)+`.querySelector('.cordoned').textContent === 'cordoned: fan failing' && !!`+gpuRow(1)+`.querySelector('[data-action=uncordon]')`, 10*time.Second)
	if l := gpuList(t, d); l.Items[1].Cordon == nil || l.Items[1].Cordon.Reason != "fan failing" || l.Items[0].Cordon != nil {
		t.Errorf("gpu list over HTTP: cordons %+v / %+v, want GPU 1 cordoned (fan failing)", l.Items[0].Cordon, l.Items[1].Cordon)
	}
	pinned := createService(t, d, modelID, "pinned", "--gpus", "device=1")
	if res := d.CLI(t, "service", "start", pinned, "--wait", "--timeout", "60"); res.Code == 0 {
		t.Errorf("a start pinned to the cordoned GPU ran:\n%s", res.Stderr)
	}
	if s := status(t, d, pinned); s.Status != "failed" || !strings.Contains(s.Reason, "cordoned (fan failing)") {
		t.Errorf("pinned: %s %q, want failed naming the cordon", s.Status, s.Reason)
	}

	// Uncordon it.
	b.click(`#gpus tr[data-gpu="1"] [data-action=uncordon]`)
	b.waitFor("GPU 1 uncordoned", `!`+gpuRow(1)+`.querySelector('.cordoned') && !!`+gpuRow(1)+`.querySelector('[data-action=cordon]')`, 10*time.Second)
	if l := gpuList(t, d); l.Items[1].Cordon != nil {
		t.Errorf("gpu list over HTTP after the uncordon: GPU 1 %+v", l.Items[1].Cordon)
	}

	// Drain GPU 0: its steps show while it runs (counted by an observer
	// as they appear), then each service's outcome.
	eval[bool](b, `(() => {
		window.aimaStepsWhileRunning = 0;
		new MutationObserver(() => {
			const st = document.querySelector('#gpu-drain .drain-state');
			if (st && st.dataset.state === 'running') window.aimaStepsWhileRunning = document.querySelectorAll('#gpu-drain .drain-steps li').length;
		}).observe(document.getElementById('main'), {subtree: true, childList: true, attributes: true});
		return true; })()`)
	b.click(`#gpus tr[data-gpu="0"] [data-action=drain]`)
	answerDialog(b, "driver update")
	b.waitFor("the drain running", `(document.querySelector('#gpu-drain .drain-state') || {dataset: {}}).dataset.state === 'running'`, 5*time.Second)
	b.waitFor("the drain's result", `document.querySelector('#gpu-drain .drain-state').dataset.state !== 'running'`, 3*time.Minute)
	steps := b.text("#gpu-drain .drain-steps")
	t.Logf("the drain's steps on the page:\n%s\nresult: %s", steps, b.text("#gpu-drain .drain-result"))
	if st := eval[string](b, `document.querySelector('#gpu-drain .drain-state').dataset.state`); st != "done" {
		t.Fatalf("the drain ended %s: %s", st, b.text("#gpu-drain"))
	}
	for _, want := range []string{"mover: GPU 0 is being drained (driver update): stopping this service to start it again on GPU 1",
		"mover: stopping → stopped", "mover: schedule", "mover: creating → running", "mover: moved off drained GPU 0: running on GPU 1"} {
		if !strings.Contains(steps, want) {
			t.Errorf("the drain's steps lack %q", want)
		}
	}
	if n := eval[int](b, `window.aimaStepsWhileRunning`); n < 2 {
		t.Errorf("%d step(s) showed before the drain's end, want its progress as it came", n)
	}
	b.waitFor("the service's outcome", fmt.Sprintf(`(document.querySelector('#gpu-drain [data-service="%s"]') || {}).textContent === 'mover (was running): moved to GPU 1'`, mover), 5*time.Second)
	b.waitFor("GPU 0 cordoned and free, GPU 1 holding the service",
		gpuRow(0)+`.querySelector('.cordoned').textContent === 'cordoned: driver update' && `+gpuRow(0)+`.querySelector('.held-by').textContent === '' && `+gpuRow(1)+`.querySelector('.held-by').textContent === 'mover'`, 10*time.Second)
	if s := status(t, d, mover); s.Status != "running" || s.GPULease == nil || s.GPULease.Indexes() != "1" {
		t.Errorf("after the drain: %s on %+v, want running on GPU 1", s.Status, s.GPULease)
	}
	if l := gpuList(t, d); l.Items[0].Cordon == nil || l.Items[0].Cordon.Reason != "driver update" {
		t.Errorf("gpu list over HTTP after the drain: GPU 0 %+v", l.Items[0].Cordon)
	}
	b.screenshot(screenshotDir(t), "gpus-1280x800.png")
	if !eval[bool](b, `window.aimaNoReload === true`) {
		t.Fatal("the page reloaded")
	}
	b.noConsoleErrors("the GPUs page")
	d.MustCLI(t, "service", "stop", mover)
}
