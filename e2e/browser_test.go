package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests' harness: one headless chromium (Debian's, which
// scripts/chromium-up.sh installs) for every flow, tabs that collect what
// a page does wrong (console errors, exceptions, failed requests, answers
// of 400 and above nobody expected), and a full-page screenshot of every
// page a flow visits, under e2e/artifacts/ui/<flow>/.

// chromiumPath is the browser to drive: $CHROMIUM, else /usr/bin/chromium,
// else chromium on PATH. Without one the test skips, but on CI (CI=true)
// it fails: there the browser tests must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "chromium"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium (scripts/chromium-up.sh installs it), and CI=true: the browser tests must run")
	}
	t.Skip("no chromium; scripts/chromium-up.sh installs it")
	return ""
}

// browser is one chromium for a test.
type browser struct {
	t         *testing.T
	ctx       context.Context // the browser's first tab, never navigated
	artifacts string
}

// newBrowser starts a headless chromium that resolves every host name to
// loopback (the admin host, the sites' subdomains and custom domains all
// reach the test's Caddy), and stops it when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("host-resolver-rules", "MAP * 127.0.0.1"),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	dir := filepath.Join("artifacts", "ui")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: ctx, artifacts: dir}
}

// tab is one browser tab of a flow. It records the page's problems as
// they happen; check (which visit calls) fails the test on any.
type tab struct {
	b      *browser
	t      *testing.T
	ctx    context.Context
	flow   string
	shots  int
	mu     sync.Mutex
	urls   map[network.RequestID]string
	issues []string
	// expect holds the answers of 400 and above that the flow asks for
	// (an error page it means to see): a URL pattern each.
	expect []*regexp.Regexp
}

// tab opens a tab for flow (its screenshots go to artifacts/ui/<flow>/);
// isolated tabs get a browser context of their own (their own cookies:
// another person signing in).
func (b *browser) tab(t *testing.T, flow string, isolated bool) *tab {
	t.Helper()
	// A browser asks every host for /favicon.ico on its own; neither the
	// UI nor the test site has one, and no page links it.
	tb := &tab{b: b, t: t, flow: flow, urls: map[network.RequestID]string{},
		expect: []*regexp.Regexp{regexp.MustCompile(`/favicon\.ico$`)}}
	opts := []chromedp.ContextOption{chromedp.WithListener(tb.listen)}
	if isolated {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(b.ctx, opts...)
	t.Cleanup(cancel)
	tb.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tb
}

// listen records what goes wrong on the tab's pages.
func (tb *tab) listen(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			tb.issues = append(tb.issues, "console error: "+strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		tb.issues = append(tb.issues, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *log.EventEntryAdded:
		// The browser's own errors: a CSP violation lands here. Failed
		// loads are left to the network events (they know the expected).
		if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
			tb.issues = append(tb.issues, fmt.Sprintf("browser error (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		tb.urls[ev.RequestID] = ev.Request.URL
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 && !tb.expected(ev.Response.URL) {
			tb.issues = append(tb.issues, fmt.Sprintf("%d from %s", ev.Response.Status, ev.Response.URL))
		}
	case *network.EventLoadingFailed:
		// A load canceled by leaving the page (an event stream, most
		// often) is no failure; a blocked one (CSP) is.
		if ev.Canceled && ev.BlockedReason == "" {
			return
		}
		u := tb.urls[ev.RequestID]
		if tb.expected(u) {
			return
		}
		tb.issues = append(tb.issues, fmt.Sprintf("request failed: %s %s %s %s", ev.Type, u, ev.ErrorText, ev.BlockedReason))
	}
}

// expected reports whether an error answer from url is one the flow asked
// for. Callers hold mu.
func (tb *tab) expected(url string) bool {
	for _, re := range tb.expect {
		if re.MatchString(url) {
			return true
		}
	}
	return false
}

// expectError lets answers of 400 and above from URLs matching pattern
// through (the flow means to see that error page).
func (tb *tab) expectError(pattern string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.expect = append(tb.expect, regexp.MustCompile(pattern))
}

// check fails the test with the problems the tab saw since the last check.
func (tb *tab) check(page string) {
	tb.t.Helper()
	tb.mu.Lock()
	issues := tb.issues
	tb.issues = nil
	tb.mu.Unlock()
	for _, is := range issues {
		tb.t.Errorf("%s, page %s: %s", tb.flow, page, is)
	}
}

// do runs actions on the tab, failing the test on an error (with a
// screenshot of where it stood).
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.shot("failed-" + slug(what))
		loc, _ := chromedp.Run(tb.ctx, chromedp.Location())
		tb.t.Fatalf("%s: %s (at %s): %v", tb.flow, what, loc, err)
	}
}

// eval evaluates a JavaScript expression on the tab's page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("%s: evaluating %s: %v", tb.flow, expr, err)
	}
	return v
}

// waitFor polls the JavaScript condition expr on the page until it holds.
// It asks again on an error too: while a page is replaced, evaluating
// fails ("Inspected target navigated or closed").
func (tb *tab) waitFor(what, expr string, within time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("(() => { try { return !!("+expr+"); } catch (e) { return false; } })()"))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the polling interval
	}
	tb.shot("failed-" + slug(what))
	body, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
	loc, _ := chromedp.Run(tb.ctx, chromedp.Location())
	tb.t.Fatalf("%s: waiting for %s (at %s, last error %v); the page says:\n%s", tb.flow, what, loc, last, body)
}

// text is the visible text of the page.
func (tb *tab) text() string { return eval[string](tb, "document.body.innerText") }

// visited marks a page visited: its problems fail the test, and its
// screenshot is saved as the flow's next artifact.
func (tb *tab) visited(page string) {
	tb.t.Helper()
	tb.check(page)
	tb.shot(page)
}

// open navigates to url and waits for its h1: a page was visited. It
// returns the page's HTTP status.
func (tb *tab) open(page, url string) int64 {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		tb.t.Fatalf("%s: opening %s: %v", tb.flow, url, err)
	}
	tb.do("waiting for the h1 of "+url, chromedp.WaitVisible(chromedp.CSS("h1")))
	tb.visited(page)
	if resp == nil {
		return 0
	}
	return resp.Status
}

// shot saves a full-page screenshot as artifacts/ui/<flow>/<nn>-<page>.png.
func (tb *tab) shot(page string) string {
	tb.t.Helper()
	tb.shots++
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Errorf("%s: screenshot of %s: %v", tb.flow, page, err)
		return ""
	}
	dir := filepath.Join(tb.b.artifacts, tb.flow)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	name := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", tb.shots, slug(page)))
	if err := os.WriteFile(name, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	return name
}

// docsShot saves the page's screenshot as docs/<name> too when
// UI_DOCS_SCREENSHOTS=1 (the README's pictures).
func (tb *tab) docsShot(name string) {
	tb.t.Helper()
	if os.Getenv("UI_DOCS_SCREENSHOTS") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("docs screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", name), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	return strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}

// js is an action evaluating expr for its effect (its value is dropped).
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](expr)(ctx, t)
		return err
	})
}
