package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"aima/internal/testenv"
)

// The browser tests drive the dashboard in a real headless Chromium
// (Debian's chromium package) through the DevTools protocol. They fail when
// Chromium is missing; `go test -short` skips them.

// chromiumPath finds the browser, failing the test when there is none.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: needs Chromium")
	}
	if p := os.Getenv("AIMA_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed (apt-get install chromium, or set AIMA_CHROMIUM): the dashboard's browser tests need it")
	return ""
}

// browser is one headless Chromium tab and what its console said.
type browser struct {
	t   testing.TB
	ctx context.Context // the tab

	mu       sync.Mutex
	problems []string
	// expectNetworkErrors is set while the test makes requests fail on
	// purpose (the daemon away, an input the daemon refuses): the browser
	// then logs failed requests, which are no fault of the page.
	expectNetworkErrors atomic.Bool
}

// newBrowser starts Chromium with a window of w×h CSS pixels and a fresh
// profile. The flags keep it off the network (no updates, sync, QUIC or
// background requests: the machine has no internet). It ends with the test.
func newBrowser(t testing.TB, w, h int) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium keeps its singleton socket in TMPDIR; a browser the test
		// ends leaves it behind, so it goes where the test cleans up.
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.WindowSize(w, h),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("start Chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, b.onEvent); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		t.Fatal(err)
	}
	return b
}

// onEvent records console errors, uncaught exceptions and browser log
// errors; it runs in the tab's event loop, so it only appends.
func (b *browser) onEvent(ev any) {
	var p string
	switch ev := ev.(type) {
	case *cdpruntime.EventExceptionThrown:
		p = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			p += " " + ev.ExceptionDetails.Exception.Description
		}
	case *cdpruntime.EventConsoleAPICalled:
		if ev.Type != cdpruntime.ConsoleAPICalledTypeError && ev.Type != cdpruntime.ConsoleAPICalledTypeAssert {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		p = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level != cdplog.EntryLevelError || (ev.Entry.Source == cdplog.EntrySourceNetwork && b.expectNetworkErrors.Load()) {
			return
		}
		p = fmt.Sprintf("log %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, p)
}

// noConsoleErrors fails the test if the page logged an error so far.
func (b *browser) noConsoleErrors(when string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("console error (%s): %s", when, p)
	}
	b.problems = nil
}

// do runs actions with a deadline, failing the test with what it waited for.
func (b *browser) do(what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage text:\n%s", what, err, b.text("body"))
	}
}

// waitFor waits until the JavaScript expression is truthy; an expression
// that throws (an element not there yet) counts as false.
func (b *browser) waitFor(what, expr string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	safe := "(() => { try { return !!(" + expr + "); } catch (e) { return false; } })()"
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](safe, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(25*time.Millisecond)))
	if err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, b.text("body"))
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text is the visible text under a CSS selector ("" when absent).
func (b *browser) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel)))
	return s
}

func (b *browser) navigate(url string) {
	b.t.Helper()
	b.do("navigate to "+url, 30*time.Second, chromedp.Navigate(url))
}

func sendKeys(sel, keys string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), keys, chromedp.NodeVisible)
}

// click clicks the element sel selects, once it is shown. The click runs
// in the page (element.click()), in one step with the lookup: the live
// table replaces rows as events arrive, and a node found in one protocol
// call may be gone by the next.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.waitFor("click "+sel, fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el || !el.offsetParent) return false; el.click(); return true; })()`, sel), 15*time.Second)
}

// downloadInto makes the browser save downloads into dir under the names
// the page gives them (headless Chromium refuses downloads by default).
func (b *browser) downloadInto(dir string) {
	b.t.Helper()
	b.do("allow downloads into "+dir, 10*time.Second, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior:     cdpbrowser.SetDownloadBehaviorBehaviorAllow,
			DownloadPath: dir,
		})
		return err
	}))
}

// downloaded waits for the file the browser saves as path (Chromium writes
// a .crdownload file and renames it when complete) and returns its text.
func (b *browser) downloaded(path string, timeout time.Duration) string {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			return string(data)
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(filepath.Dir(path))
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			b.t.Fatalf("no download %s after %s (the directory holds %v)", path, timeout, names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot writes the viewport as a PNG into dir.
func (b *browser) screenshot(dir, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// screenshotDir is where the screenshots go: AIMA_SCREENSHOT_DIR, or
// bin/screenshots in the checkout (kept after the run, ignored by git).
func screenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AIMA_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(testenv.ModuleRoot(t), "bin", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string { return fmt.Sprintf("%q", s) }
