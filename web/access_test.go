package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"aima/client"
	"aima/httpguard"
	"aima/internal/testenv"
	"aima/internal/testenv/daemontest"
	"aima/runtime/fakeruntime"
	"aima/services"
	"aima/tools"
	"aima/web"
)

// These tests run the whole daemon on the fake runtime: no Docker.

const fakeImage = "fake/vllm:1"

func fakeDaemon(t testing.TB, fr *fakeruntime.Runtime, opts daemontest.Options) *daemontest.Daemon {
	t.Helper()
	cfg := testenv.SimConfig(t, testenv.SimConfigOptions{Image: fakeImage, Extra: "health_interval: 5ms\n"})
	opts.Runtime = fr
	return daemontest.Start(t, cfg, opts)
}

func newFake(t testing.TB) *fakeruntime.Runtime {
	fr := fakeruntime.New(fakeruntime.WithImages(fakeImage))
	t.Cleanup(fr.Close)
	return fr
}

func httpGet(t *testing.T, url string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if h := header["Host"]; h != "" {
		req.Host = h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// With a token, the daemon serves the page's files without it (they hold
// no data) and everything else only with it; the session route says which
// way the request stands; the guard's Host and Origin rules still apply.
func TestPageBehindTheGuard(t *testing.T) {
	t.Parallel()
	const token = "dashboard-test-token"
	d := fakeDaemon(t, newFake(t), daemontest.Options{Token: token})
	for path, want := range map[string]int{"/ui/": 200, "/ui/js/app.js": 200, "/api/service/list": 401, "/api/events": 401} {
		if code, body := httpGet(t, d.URL+path, nil); code != want {
			t.Errorf("GET %s without the token: %d %s", path, code, body)
		}
	}
	if code, _ := httpGet(t, d.URL+"/ui/", map[string]string{"Host": "evil.example"}); code != http.StatusForbidden {
		t.Errorf("GET /ui/ with a foreign Host: %d", code)
	}
	var s web.Session
	_, body := httpGet(t, d.URL+web.SessionPath, nil)
	if err := json.Unmarshal([]byte(body), &s); err != nil || s != (web.Session{TokenRequired: true}) {
		t.Errorf("session without the token: %s", body)
	}
	_, body = httpGet(t, d.URL+web.SessionPath, map[string]string{"Authorization": "Bearer " + token})
	if err := json.Unmarshal([]byte(body), &s); err != nil || s != (web.Session{TokenRequired: true, Authenticated: true}) {
		t.Errorf("session with the token: %s", body)
	}
}

// system_info gives the page what it draws from: the statuses, phases and
// failure kinds, and the operations, without the mutating ones when
// read-only.
func TestSystemInfo(t *testing.T) {
	t.Parallel()
	for _, readOnly := range []bool{false, true} {
		d := fakeDaemon(t, newFake(t), daemontest.Options{ReadOnly: readOnly})
		raw, err := client.New(d.URL).Call(t.Context(), "system_info", struct{}{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var info tools.SystemInfo
		if err := json.Unmarshal(raw, &info); err != nil {
			t.Fatal(err)
		}
		if info.ReadOnly != readOnly || info.DataDir != d.DataDir || len(info.Statuses) != len(services.AllStatuses) ||
			len(info.Phases) != len(services.StartPhases) || len(info.FailureKinds) != len(services.AllFailureKinds) {
			t.Errorf("read-only %v: %+v", readOnly, info)
		}
		has := func(name string) bool {
			for _, op := range info.Operations {
				if op.Name == name {
					return true
				}
			}
			return false
		}
		if !has("service_list") || has("service_start") != !readOnly {
			t.Errorf("read-only %v: operations %+v", readOnly, info.Operations)
		}
	}
}

// In a browser: with a token set the page asks for it once, then works
// over the login cookie (its event stream included), a reload too; the form creates and
// starts a service; delete asks first. A read-only daemon's page shows no
// buttons.
func TestDashboardLoginFormsAndReadOnly(t *testing.T) {
	chromiumPath(t)
	t.Parallel()
	const token = "dashboard-test-token"
	fr := newFake(t)
	d := fakeDaemon(t, fr, daemontest.Options{Token: token})

	b := newBrowser(t, 1280, 800)
	b.navigate(d.URL + "/ui/")
	b.waitFor("the login form", `document.getElementById('login-dialog').open`, 10*time.Second)
	b.do("log in", 10*time.Second, sendKeys("#login-token", token+"\n"))
	b.waitFor("the live indicator", `document.getElementById('conn').dataset.state === 'live'`, 10*time.Second)
	b.waitFor("the log-out button", `!document.getElementById('logout').hidden`, 5*time.Second)
	cookie := eval[string](b, `document.cookie`)
	if strings.Contains(cookie, "aima_session") {
		t.Errorf("the page can read the login cookie: %q", cookie)
	}
	// A reload is served by the cookie: the page goes live without asking
	// again (the question would hold it at the login form).
	eval[bool](b, `window.aimaBeforeReload = true`)
	b.do("reload", 10*time.Second, chromedp.Reload())
	b.waitFor("the live indicator after the reload", `window.aimaBeforeReload === undefined && document.getElementById('conn').dataset.state === 'live'`, 10*time.Second)
	if eval[bool](b, `document.getElementById('login-dialog').open || document.getElementById('logout').hidden`) {
		t.Error("after a reload the page asks for the token again, or offers no log-out")
	}

	// The create form: a remote model reference, started at once.
	b.click("#new-service")
	b.waitFor("the engine choices", `document.querySelector('#create-form select[name=engine_type]').options.length > 0`, 5*time.Second)
	if eng := eval[string](b, `document.querySelector('#create-form select[name=engine_type]').value`); eng != "vllm" {
		t.Errorf("the form's engine is %q, want vllm first", eng)
	}
	b.do("fill the form", 10*time.Second,
		sendKeys(`#create-form input[name=model_id]`, "org/tiny"),
		sendKeys(`#create-form input[name=name]`, "from-the-form"))
	b.click(`#create-form button[type=submit]`)
	b.waitFor("the new service running", `[...document.querySelectorAll('#services tbody tr')].some(r => r.innerText.includes('from-the-form') && r.querySelector('.chip').dataset.status === 'running')`, 20*time.Second)
	// The row can show running (from the event stream) before the form's
	// start call has answered and closed the form; "New service" toggles
	// the form, so it is clicked once the form has closed.
	b.waitFor("the form closed", `document.getElementById('create-form').closest('.form-box').hidden`, 10*time.Second)

	// The daemon's refusal shows in the form.
	b.expectNetworkErrors.Store(true)
	b.click("#new-service")
	b.do("fill a bad port", 10*time.Second,
		sendKeys(`#create-form input[name=model_id]`, "org/tiny"),
		sendKeys(`#create-form input[name=name]`, "from-the-form"))
	b.click(`#create-form button[type=submit]`)
	b.waitFor("the conflict shown", `document.querySelector('#create-form .error').innerText.includes('already exists')`, 5*time.Second)
	b.click(`#create-form button[type=button]`)
	b.expectNetworkErrors.Store(false)

	// Delete asks, and cancel keeps the service.
	b.click(`#services tbody tr [data-action=delete]`)
	b.waitFor("the confirmation", `document.getElementById('confirm-dialog').open`, 5*time.Second)
	b.click(`#confirm-dialog button[value=cancel]`)
	b.click(`#services tbody tr [data-action=delete]`)
	b.waitFor("the confirmation", `document.getElementById('confirm-dialog').open`, 5*time.Second)
	b.click(`#confirm-ok`)
	b.waitFor("the row gone", `document.querySelectorAll('#services tbody tr').length === 0`, 10*time.Second)
	b.noConsoleErrors("with a token")

	// Read-only: the same store, no buttons.
	c := client.New(d.URL)
	c.Token = httpguard.Secret(token)
	if _, err := c.Call(context.Background(), "service_create", tools.ServiceCreateInput{ModelID: "org/tiny", EngineType: "vllm", Name: "kept"}, nil); err != nil {
		t.Fatal(err)
	}
	b.expectNetworkErrors.Store(true) // the page may be reading from the daemon that stops
	d.Stop()
	ro := fakeDaemon(t, fr, daemontest.Options{ReadOnly: true, DataDir: d.DataDir})
	b.navigate(ro.URL + "/ui/")
	b.expectNetworkErrors.Store(false)
	b.waitFor("the service listed", `document.querySelectorAll('#services tbody tr').length === 1`, 10*time.Second)
	b.waitFor("the read-only badge", `!document.getElementById('readonly').hidden`, 5*time.Second)
	if n := eval[int](b, `document.querySelectorAll('[data-action], #new-service').length`); n != 0 {
		t.Errorf("read-only page shows %d buttons", n)
	}
	b.noConsoleErrors("read-only")
}
