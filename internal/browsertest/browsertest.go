// Package browsertest runs a headless Chromium for tests that need a real
// browser: EventSource, CORS and the dashboard.
//
// [New] finds Chromium on PATH (chromium, chromium-browser or
// google-chrome), or the binary named by HERALD_CHROMIUM, and starts it
// with a fresh profile. When none is found the test is skipped, except
// under CI=true, where it fails: CI must run the browser tests.
//
// Every action is bounded in time, and the browser is closed when the
// test ends (t.Cleanup). A failing test logs the pages' console output.
// Screenshots go to $HERALD_ARTIFACTS, or to herald-artifacts in the
// system's temporary directory.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Timeout bounds each browser action (a navigation, an evaluation, a
// click) and the start of the browser.
const Timeout = 20 * time.Second

// Browser is a headless Chromium started for one test. It is closed when
// the test that created it ends. A Browser is safe for concurrent use by
// the test's goroutines.
type Browser struct {
	t   testing.TB
	ctx context.Context // the browser's first tab

	mu    sync.Mutex
	first bool     // the first tab has not been handed out by Page yet
	logs  []string // console messages and exceptions of every page
}

// ExecPath returns the Chromium binary to use: $HERALD_CHROMIUM if set,
// else the first of chromium, chromium-browser and google-chrome found on
// PATH. It returns "" when there is none.
func ExecPath() string {
	if p := os.Getenv("HERALD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless Chromium for t and returns it. Without Chromium it
// skips t, or fails it when the environment has CI=true. extra adds
// command-line options to the defaults (e.g. chromedp.Flag
// ("ignore-certificate-errors", true) for a test's self-signed HTTPS).
func New(t testing.TB, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	path := ExecPath()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("browsertest: chromium not found (CI=true): apt-get install chromium")
		}
		t.Skip("chromium not found: apt-get install chromium")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("mute-audio", true),
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{t: t, first: true}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	b.ctx = ctx
	t.Cleanup(func() {
		// Close the browser gracefully, then make sure the process is gone:
		// canceling the allocator waits for it to exit.
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		_ = chromedp.Cancel(cctx)
		ccancel()
		cancel()
		cancelAlloc()
		if t.Failed() {
			b.dumpLogs()
		}
	})
	// The first Run starts the browser; it is bound to ctx, so a watchdog
	// bounds it instead of a deadline.
	watchdog := time.AfterFunc(Timeout, cancel)
	err := chromedp.Do(ctx)
	if !watchdog.Stop() {
		err = errors.Join(err, errors.New("browser did not start in time"))
	}
	if err != nil {
		t.Fatalf("browsertest: start %s: %v", path, err)
	}
	return b
}

// listen records the console output and the uncaught exceptions of a
// page. It runs on the tab's message loop, so it only appends.
func (b *Browser) listen(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = "exception: " + d.Text
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
	default:
		return
	}
	b.mu.Lock()
	b.logs = append(b.logs, line)
	b.mu.Unlock()
}

func (b *Browser) dumpLogs() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.logs) == 0 {
		return
	}
	b.t.Logf("browser console (%d lines):\n%s", len(b.logs), strings.Join(b.logs, "\n"))
}

// Page returns a tab of the browser: the first call returns the tab the
// browser started with, later calls open new tabs. A tab is closed with
// the browser, or earlier with [Page.Close].
func (b *Browser) Page() *Page {
	b.t.Helper()
	b.mu.Lock()
	first := b.first
	b.first = false
	b.mu.Unlock()
	if first {
		return &Page{t: b.t, ctx: b.ctx, close: func() {}}
	}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(b.listen))
	watchdog := time.AfterFunc(Timeout, cancel)
	err := chromedp.Do(ctx)
	if !watchdog.Stop() {
		err = errors.Join(err, errors.New("tab did not open in time"))
	}
	if err != nil {
		cancel()
		b.t.Fatalf("browsertest: open tab: %v", err)
	}
	p := &Page{t: b.t, ctx: ctx, close: cancel}
	b.t.Cleanup(cancel)
	return p
}

// Page is one browser tab. Its methods fail the test on error. A Page is
// used by one goroutine at a time.
type Page struct {
	t     testing.TB
	ctx   context.Context
	close context.CancelFunc
}

// Context returns the chromedp context of the tab, for actions this
// package does not wrap. Bound each use with a timeout.
func (p *Page) Context() context.Context { return p.ctx }

// Close closes the tab. The browser's first tab stays open until the
// browser closes.
func (p *Page) Close() { p.close() }

func (p *Page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browsertest: %s: %v", what, err)
	}
}

// Open navigates the tab to url and waits for the page to load.
func (p *Page) Open(url string) {
	p.t.Helper()
	p.do("open "+url, chromedp.Navigate(url))
}

// Eval evaluates the JavaScript expression js in the page, awaiting it if
// it is a promise, and decodes its JSON value into out (nil to ignore it).
func (p *Page) Eval(js string, out any) {
	p.t.Helper()
	if err := p.EvalErr(js, out); err != nil {
		p.t.Fatalf("browsertest: eval %s: %v", js, err)
	}
}

// EvalErr is [Page.Eval] returning the error instead of failing the test;
// a thrown exception is an error.
func (p *Page) EvalErr(js string, out any) error {
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// WaitFor evaluates the JavaScript expression cond every 25ms until it is
// truthy, and fails the test if that takes longer than timeout. The
// failure message shows the last value of debug, a JavaScript expression
// that describes the page's state ("" for none).
func (p *Page) WaitFor(cond string, timeout time.Duration, debug string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		err := p.EvalErr("!!("+cond+")", &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("browsertest: %s still false after %v", cond, timeout)
			if err != nil {
				msg += fmt.Sprintf(" (last error: %v)", err)
			}
			if debug != "" {
				var state any
				if derr := p.EvalErr(debug, &state); derr != nil {
					msg += fmt.Sprintf("; %s: %v", debug, derr)
				} else {
					msg += fmt.Sprintf("; %s = %v", debug, state)
				}
			}
			p.t.Fatal(msg)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// SetValue sets the value of the form field that the CSS selector sel
// finds, as a user typing it would (an input event is dispatched).
func (p *Page) SetValue(sel, value string) {
	p.t.Helper()
	v, _ := json.Marshal(value)
	s, _ := json.Marshal(sel)
	p.Eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) throw new Error("no element " + %s);
		e.value = %s; e.dispatchEvent(new Event("input", {bubbles: true})); })()`, s, s, v), nil)
}

// Click clicks the element that the CSS selector sel finds, with a real
// mouse event, once it is visible.
func (p *Page) Click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// Screenshot saves a PNG of the whole page as name (".png" is added) in
// [ArtifactDir], logs its path and returns it.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("browsertest: screenshot %s: %v", name, err)
	}
	dir := ArtifactDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatalf("browsertest: screenshot: %v", err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatalf("browsertest: screenshot: %v", err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// ArtifactDir returns the directory where test artifacts are written:
// $HERALD_ARTIFACTS, or herald-artifacts in the system's temporary
// directory.
func ArtifactDir() string {
	if d := os.Getenv("HERALD_ARTIFACTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "herald-artifacts")
}
