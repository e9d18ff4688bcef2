package web_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"aima/internal/testenv"
)

// Steps of TestDashboardLive on a running service's page, apart to keep
// the test's story readable.

// engineLogLine sends the engine a request whose access-log line carries
// marker.
func engineLogLine(t *testing.T, endpoint, marker string) {
	t.Helper()
	resp, err := http.Get(endpoint + "/v1/models?" + marker)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// setFilter types into the log panel's filter (or empties it).
func setFilter(b *browser, text string) {
	b.t.Helper()
	eval[bool](b, `(() => { const f = document.getElementById('log-filter'); f.value = ''; f.dispatchEvent(new Event('input')); return true; })()`)
	if text != "" {
		b.do("type into the log filter", 5*time.Second, sendKeys("#log-filter", text))
	}
}

// timestamped is a line of a downloaded log: the engine's line after the
// time Docker read it.
var timestamped = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z `)

// checkLogTools drives the log panel of the open service page, whose logs
// hold the line with probe: the filter leaves only matching lines; pause
// holds a new line back (counting it) until resume; download saves the
// run's lines, each with its time, as <name>-run<run>.log.
func checkLogTools(t *testing.T, b *browser, endpoint, name string, run int, probe string) (held string) {
	t.Helper()
	logs := `document.getElementById('logs')`
	setFilter(b, probe)
	b.waitFor("only the lines with the filter's text", `(() => { const ls = [...document.querySelectorAll('#logs .line')];
		return ls.length > 0 && ls.every(l => l.textContent.includes(`+jsString(probe)+`)); })()`, 5*time.Second)
	if eval[bool](b, logs+`.textContent.includes('Application startup complete')`) {
		t.Error("the filtered log still shows the start-up line")
	}
	setFilter(b, "")
	b.waitFor("every line back without the filter", logs+`.textContent.includes('Application startup complete') && `+logs+`.textContent.includes(`+jsString(probe)+`)`, 5*time.Second)

	b.click("#log-pause")
	b.waitFor("the pause button saying resume", `document.getElementById('log-pause').textContent === 'Resume'`, 5*time.Second)
	held = "dashboard-held-" + testenv.UniqueName(t)
	engineLogLine(t, endpoint, held)
	b.waitFor("the held line counted", `/paused, [1-9][0-9]* new/.test(document.getElementById('log-state').textContent)`, 5*time.Second)
	if eval[bool](b, logs+`.textContent.includes(`+jsString(held)+`)`) {
		t.Error("the paused log shows a new line")
	}
	b.click("#log-pause")
	b.waitFor("the held line after resume", logs+`.textContent.includes(`+jsString(held)+`) && !/paused/.test(document.getElementById('log-state').textContent)`, 5*time.Second)

	dir := t.TempDir()
	b.downloadInto(dir)
	b.click("#log-download")
	text := b.downloaded(filepath.Join(dir, fmt.Sprintf("%s-run%d.log", name, run)), 15*time.Second)
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for _, want := range []string{"Application startup complete", probe, held} {
		if !strings.Contains(text, want) {
			t.Errorf("the downloaded log lacks %q:\n%s", want, text)
		}
	}
	for _, l := range lines {
		if !timestamped.MatchString(l) {
			t.Errorf("a downloaded line without its time: %q", l)
			break
		}
	}
	return held
}

// restartFromTheRow restarts service id with its row's restart button in
// the services table: the row's status chip leaves running and comes back.
// Then the service's page lists the new run's phases and statuses in its
// events, follows the new container's logs, and "previous run" shows the
// old one's lines (those with the markers).
func restartFromTheRow(t *testing.T, b *browser, id string, run int, markers ...string) {
	t.Helper()
	b.do("open the services", 5*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = '#/services'`))
	row := fmt.Sprintf(`document.querySelector('#services tr[data-id=%s]')`, jsString(id))
	b.waitFor("the row running", row+`.querySelector('.chip').dataset.status === 'running'`, 10*time.Second)
	// Every status the row's chip shows, in order (a restart can be quick).
	eval[bool](b, `(() => {
		window.aimaChips = ['running'];
		new MutationObserver(() => {
			const c = document.querySelector('#services tr[data-id=`+jsString(id)+`] .chip');
			if (c && window.aimaChips[window.aimaChips.length - 1] !== c.dataset.status) window.aimaChips.push(c.dataset.status);
		}).observe(document.getElementById('main'), {subtree: true, childList: true, attributes: true});
		return true; })()`)
	b.click(fmt.Sprintf(`#services tr[data-id="%s"] [data-action=restart]`, id))
	b.waitFor("the chip back to running after another status", `window.aimaChips.length >= 3 && `+row+`.querySelector('.chip').dataset.status === 'running'`, 60*time.Second)
	t.Logf("the row's chip during the restart: %s", eval[string](b, `window.aimaChips.join(' → ')`))

	b.click(fmt.Sprintf(`#services tr[data-id="%s"] a.name`, id))
	newRun := jsString(fmt.Sprint(run + 1))
	b.waitFor("the new run's phases and statuses in the events", `(() => {
		const rows = type => [...document.querySelectorAll('#events tbody tr[data-type=' + type + ']')].filter(r => r.cells[1].textContent === `+newRun+`);
		return rows('phase').length >= 2 && rows('status').some(r => /running/.test(r.innerText));
	})()`, 10*time.Second)
	b.waitFor("the new container's logs", `document.getElementById('log-state').textContent.startsWith('following') && document.getElementById('logs').textContent.includes('Application startup complete')`, 15*time.Second)
	for _, m := range markers {
		if eval[bool](b, `document.getElementById('logs').textContent.includes(`+jsString(m)+`)`) {
			t.Errorf("the new run's logs show the old run's line %q", m)
		}
	}
	b.click("#log-previous")
	for _, m := range markers {
		b.waitFor("the previous run's line "+m, `document.getElementById('log-state').textContent === 'previous run' && document.getElementById('logs').textContent.includes(`+jsString(m)+`)`, 10*time.Second)
	}
	b.click("#log-previous")
	b.waitFor("following again", `document.getElementById('log-state').textContent.startsWith('following')`, 10*time.Second)
}
