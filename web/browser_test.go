package web_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"aima/internal/testenv"
	"aima/services"
	"aima/tools"
)

// pullPadding is the size of the extra layer of the engine image the
// dashboard test pulls, and pullRate the registry's pace: a pull of about
// three seconds, long enough to see its bytes and bar.
const (
	pullPadding = 24 << 20
	pullRate    = 8 << 20
)

// TestDashboardLive drives the dashboard of the built daemon in headless
// Chromium while services run on the real Docker engine with the engine
// simulator: a service started from the CLI appears and reaches running
// with no reload (its pull showing bytes and a bar), its page shows every
// phase in the timeline, an engine log line within 2 s and the engine's
// live figures (service_metrics); the log panel filters, pauses, downloads
// and shows the previous run after the row's restart button; a failed start
// shows its reason and the engine's error line, and the page reconnects by
// itself after the daemon restarts, when the row's stop button stops the
// service; the console stays free of errors.
// Screenshots at 1280×800 and 390×844 go to screenshotDir.
func TestDashboardLive(t *testing.T) {
	chromiumPath(t)
	testenv.RequireDocker(t)
	shots := screenshotDir(t)
	t.Logf("screenshots go to %s", shots)

	// The engine image is only in a loopback registry that serves it
	// slowly, so the first start pulls it with byte progress.
	reg := testenv.StartRegistry(t, testenv.WithBandwidth(pullRate))
	local := "aima-enginesim-padded:" + testenv.UniqueName(t)
	testenv.EngineSimImageWithPadding(t, local, pullPadding)
	ref := reg + "/aima/enginesim:" + testenv.UniqueName(t)
	testenv.PushToRegistry(t, local, ref)
	testenv.RemoveImage(t, ref)
	testenv.RemoveImage(t, local)
	t.Cleanup(func() { testenv.RemoveImage(t, ref) })

	d := testenv.StartDaemon(t, testenv.DaemonOptions{Config: testenv.SimConfig(t, testenv.SimConfigOptions{Image: ref})})
	info := systemInfo(t, d)
	modelID := addModel(t, d, "qwen2-0.5b-instruct")

	b := newBrowser(t, 1280, 800)
	b.navigate(d.URL() + "/")
	b.waitFor("the live indicator", `document.getElementById('conn').dataset.state === 'live'`, 20*time.Second)
	b.waitFor("the empty services table", `!!document.querySelector('.empty') && !document.querySelector('#services tbody tr')`, 5*time.Second)
	eval[bool](b, `window.aimaNoReload = true`)

	// A service started from the CLI appears, pulls with bytes and a bar,
	// and reaches running.
	chat := createService(t, d, modelID, "chat")
	d.MustCLI(t, "service", "start", chat)
	row := fmt.Sprintf(`document.querySelector('#services tr[data-id=%s]')`, jsString(chat))
	b.waitFor("the new service's row", "!!"+row, 5*time.Second)
	b.waitFor("pull bytes and a bar in the row", row+` && !!`+row+`.querySelector('.pull progress') && /MB/.test(`+row+`.innerText)`, 60*time.Second)
	b.waitFor("the service running in the table", row+`.querySelector('.chip').dataset.status === 'running'`, 120*time.Second)
	if !eval[bool](b, `window.aimaNoReload === true`) {
		t.Fatal("the page reloaded")
	}

	// Its page: every phase of the start in the timeline, and a line the
	// engine prints shows within 2 s.
	b.click(fmt.Sprintf(`#services tr[data-id="%s"] a.name`, chat))
	for _, p := range info.Phases {
		b.waitFor("phase "+string(p)+" done in the timeline",
			fmt.Sprintf(`!!document.querySelector('#timeline li[data-phase="%s"][data-state="done"]')`, p), 10*time.Second)
	}
	b.waitFor("the outcome in the timeline", `!!document.querySelector('#timeline li.outcome.running')`, 5*time.Second)
	b.waitFor("the pull's bytes in the timeline", `!!document.querySelector('#timeline li[data-phase="pull"] progress') && /MB/.test(document.querySelector('#timeline li[data-phase="pull"]').innerText)`, 5*time.Second)
	b.waitFor("the logs following", `document.getElementById('log-state').textContent.startsWith('following')`, 15*time.Second)
	b.waitFor("the engine's start-up lines", `document.getElementById('logs').textContent.includes('Application startup complete')`, 10*time.Second)
	rec := status(t, d, chat)
	probe := "dashboard-probe-" + testenv.UniqueName(t)
	sent := time.Now()
	engineLogLine(t, rec.Endpoint, probe)
	b.waitFor("the engine's log line of the request", `document.getElementById('logs').textContent.includes(`+jsString(probe)+`)`, 2*time.Second)
	t.Logf("the engine's log line showed %s after the request", time.Since(sent).Round(time.Millisecond))
	b.waitFor("the engine's live figures", `document.querySelectorAll('#figures .fig').length >= 4 && /running/.test(document.getElementById('figures').innerText)`, 15*time.Second)
	b.screenshot(shots, "service-1280x800.png")

	// The log panel's filter, pause and download; then a restart from the
	// row's button, after which the page follows the new run and shows
	// the previous one's lines on demand.
	held := checkLogTools(t, b, rec.Endpoint, rec.Name, rec.Run, probe)
	restartFromTheRow(t, b, chat, rec.Run, probe, held)

	// A failed start shows its reason and the engine's own error line.
	broken := createService(t, d, modelID, "broken", "--env", "SIM_FAIL=oom-load")
	d.MustCLI(t, "service", "start", broken)
	b.do("open the failed service", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = '#/services/`+broken+`'`))
	b.waitFor("the failure", `!!document.getElementById('failure-reason')`, 60*time.Second)
	failed := status(t, d, broken)
	if failed.Status != services.StatusFailed || failed.EngineError == "" {
		t.Fatalf("broken: %+v", failed)
	}
	b.waitFor("the engine's error line", `(document.getElementById('engine-error') || {}).textContent === `+jsString(failed.EngineError), 5*time.Second)
	// The reason shows with the engine's line apart.
	headline := strings.Replace(failed.Reason, ": "+failed.EngineError, "", 1)
	b.waitFor("the reason", `document.getElementById('failure-reason').textContent === `+jsString(headline), 5*time.Second)
	b.waitFor("the failure kind", `document.getElementById('failure').innerText.includes(`+jsString(string(failed.Failure))+`)`, 5*time.Second)
	b.waitFor("the phase it failed in", fmt.Sprintf(`!!document.querySelector('#timeline li[data-phase="%s"][data-state="failed"]')`, failed.Phase), 5*time.Second)
	b.screenshot(shots, "failed-1280x800.png")

	// The dashboard with services in several states (one loading slowly),
	// at both sizes.
	createService(t, d, modelID, "embeddings")
	slow := createService(t, d, modelID, "reranker", "--env", "SIM_STARTUP=600s")
	d.MustCLI(t, "service", "start", slow)
	b.do("open the services", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = '#/services'`))
	b.waitFor("four rows", `document.querySelectorAll('#services tbody tr').length === 4`, 10*time.Second)
	slowRow := fmt.Sprintf(`document.querySelector('#services tr[data-id="%s"]')`, slow)
	b.waitFor("the slow service loading", slowRow+`.querySelector('.phase[data-phase="loading"]') && / s$/.test(`+slowRow+`.querySelector('.elapsed').textContent)`, 30*time.Second)
	b.screenshot(shots, "dashboard-1280x800.png")
	b.do("phone viewport", 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.waitFor("the phone layout", `getComputedStyle(document.querySelector('#services thead')).display === 'none'`, 5*time.Second)
	b.screenshot(shots, "dashboard-390x844.png")
	b.do("desktop viewport", 10*time.Second, chromedp.EmulateViewport(1280, 800))

	// The other sections: the model, the engines, the daemon's health.
	b.click(`[data-nav="models"]`)
	b.waitFor("the model listed", `document.getElementById('models').innerText.includes(`+jsString(modelID)+`)`, 10*time.Second)
	b.click(`[data-nav="engines"]`)
	b.waitFor("the engines listed", `/vllm/.test(document.getElementById('engines').innerText)`, 10*time.Second)
	if eval[bool](b, `!document.querySelector('[data-nav="gpus"]').hidden`) {
		b.click(`[data-nav="gpus"]`)
		b.waitFor("the GPU inventory (or why there is none)", `!!document.getElementById('gpus') || /GPU/.test(document.querySelector('#main .panel').innerText.replace('GPUs', ''))`, 15*time.Second)
	}
	b.click(`[data-nav="health"]`)
	b.waitFor("Docker reachable", `document.getElementById('health-docker').innerText.includes('reachable') && !document.getElementById('health-docker').innerText.includes('unreachable')`, 10*time.Second)
	b.waitFor("the data dir", `document.getElementById('health-datadir').textContent === `+jsString(info.DataDir), 5*time.Second)
	b.waitFor("the version", `document.getElementById('health').innerText.includes(`+jsString(info.Version)+`)`, 5*time.Second)
	b.screenshot(shots, "health-1280x800.png")
	b.click(`[data-nav="services"]`)
	b.noConsoleErrors("before the daemon restart")

	// The daemon goes away and comes back: the page says so, reconnects by
	// itself and shows what happens next.
	b.expectNetworkErrors.Store(true)
	d.Term(t, 20*time.Second)
	b.waitFor("the reconnecting indicator", `document.getElementById('conn').dataset.state === 'reconnecting'`, 10*time.Second)
	d.Restart(t)
	b.waitFor("the live indicator after the restart", `document.getElementById('conn').dataset.state === 'live'`, 30*time.Second)
	b.expectNetworkErrors.Store(false)
	b.click(fmt.Sprintf(`#services tr[data-id="%s"] [data-action=stop]`, chat))
	b.waitFor("the stop after the restart", row+` && `+row+`.querySelector('.chip').dataset.status === 'stopped'`, 30*time.Second)
	if !eval[bool](b, `window.aimaNoReload === true`) {
		t.Fatal("the page reloaded")
	}
	b.noConsoleErrors("after the daemon restart")
}

func systemInfo(t *testing.T, d *testenv.DaemonProc) tools.SystemInfo {
	t.Helper()
	var info tools.SystemInfo
	if err := json.Unmarshal([]byte(d.MustCLI(t, "system", "info", "-o", "json").Stdout), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Phases) == 0 {
		t.Fatalf("system info without phases: %+v", info)
	}
	return info
}

func addModel(t *testing.T, d *testenv.DaemonProc, name string) string {
	t.Helper()
	var m struct{ ID string }
	if err := json.Unmarshal([]byte(d.MustCLI(t, "model", "add", "--path", testenv.MakeModel(t, name), "-o", "json").Stdout), &m); err != nil || m.ID == "" {
		t.Fatalf("model add: %v %+v", err, m)
	}
	return m.ID
}

// createService creates a vllm service from the CLI; its containers are
// removed when the test ends.
func createService(t *testing.T, d *testenv.DaemonProc, modelID, name string, extra ...string) string {
	t.Helper()
	args := append([]string{"service", "create", "--model-id", modelID, "--engine-type", "vllm", "--name", name, "-o", "json"}, extra...)
	var s services.Service
	if err := json.Unmarshal([]byte(d.MustCLI(t, args...).Stdout), &s); err != nil || s.ID == "" {
		t.Fatalf("service create: %v %+v", err, s)
	}
	testenv.RemoveContainersWithLabel(t, "aima.service", s.ID)
	return s.ID
}

func status(t *testing.T, d *testenv.DaemonProc, id string) services.Service {
	t.Helper()
	var s services.Service
	if err := json.Unmarshal([]byte(d.MustCLI(t, "service", "status", id, "-o", "json").Stdout), &s); err != nil {
		t.Fatal(err)
	}
	return s
}
