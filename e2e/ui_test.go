package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agistaffers/caddy-multitenant/internal/dnstest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The web UI in a real browser: one Caddy built from this module (the
// admin host serving tenant_admin, its UI at /), the real PostgreSQL and
// Docker engine, and one headless chromium for every flow of issue 11.
// Every page a flow visits is screenshotted under e2e/artifacts/ui/, and a
// console error, an exception or a failed request on it fails the test.
// With UI_DOCS_SCREENSHOTS=1 the README's two pictures are written to
// docs/ as well.

const (
	uiHost             = adminHost
	uiOperatorEmail    = "ops@example.org"
	uiOperatorPassword = "correct horse battery"
	uiCustomerPassword = "customer staple battery"
)

// uiPlatform is the platform the browser drives, with what the flows
// made along the way (later flows build on earlier ones).
type uiPlatform struct {
	*adminPlatform
	base string // the UI's URL: http://<admin host>:port

	customerEmail string
	customerID    string
	siteID        string
	subdomain     string
	invitePath    string
	other         tenants.Site // another customer's site
	templateID    string
}

func newUIPlatform(t *testing.T) *uiPlatform {
	t.Helper()
	dns := dnstest.Start(t)
	// The browser uses the admin host proper over plain HTTP, not a
	// loopback name (a secure context): its form posts must carry an
	// Origin the CSRF check accepts there too.
	ap := startAdminPlatform(t, dns, platformOptions{Sites: fmt.Sprintf(`http://%s:{HTTP_PORT} {
	route {
		tenant_admin {
			public_ips 203.0.113.10
			dns_resolver %s
			session_idle 30m
			session_lifetime 2h
		}
	}
}`, adminHost, dns.Addr)})
	_, port, _ := strings.Cut(ap.caddy.HTTP, ":")
	p := &uiPlatform{adminPlatform: ap, base: "http://" + uiHost + ":" + port}

	// What an operator finds already there: an admin user (as `caddy
	// tenants admins add` makes one), a plan and the test site template.
	hash, err := manage.HashPassword(uiOperatorPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.store.CreateUser(context.Background(), "e2e", &tenants.User{Email: uiOperatorEmail, Name: "Ops", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	p.mustAPI("POST", "/api/v1/plans", map[string]any{"slug": "starter", "name": "Starter", "max_sites": 5}, 201, nil)
	var tpl tenants.Template
	p.mustAPI("POST", "/api/v1/templates", map[string]any{"slug": "testsite", "name": "Test site", "image": testimage.DefaultTag,
		"port": 8080, "env": map[string]string{"DATA_DIR": "/data"}, "data_path": "/data", "health_path": "/health",
		"memory_bytes": 64 << 20, "pids_limit": 64}, 201, &tpl)

	p.templateID = tpl.ID

	// Another customer with a site: the invited customer must not see it.
	var other tenants.Customer
	p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": "other@example.org", "name": "Other Corp"}, 201, &other)
	p.mustAPI("POST", "/api/v1/sites", map[string]any{"customer_id": other.ID, "template_id": tpl.ID,
		"subdomain": "othersite", "env": map[string]string{"SITE_NAME": "othersite", "OTHER_SECRET_TOKEN": "s3cr3t-of-other"}}, 201, &p.other)
	return p
}

// siteURL is the address of a site's host on the platform's port.
func (p *uiPlatform) siteURL(host, path string) string {
	_, port, _ := strings.Cut(p.caddy.HTTP, ":")
	return "http://" + host + ":" + port + path
}

// TestUI runs the browser flows in order on one platform and one browser;
// each flow builds on what the ones before made, so a failed flow skips
// the ones that need it.
func TestUI(t *testing.T) {
	t.Parallel()
	p := newUIPlatform(t)
	b := newBrowser(t)
	op := b.tab(t, "operator", false)

	steps := []struct {
		name  string
		needs []string
		run   func(t *testing.T)
	}{
		{"harness", nil, func(t *testing.T) { p.checkHarness(t, b) }},
		{"login", nil, func(t *testing.T) { p.flowLogin(t, op) }},
		{"customer-and-site", []string{"login"}, func(t *testing.T) { p.flowCustomerAndSite(t, op) }},
		{"live-status", []string{"login"}, func(t *testing.T) { p.ensureSite(t); p.flowLiveStatus(t, b, op) }},
		{"live-logs", []string{"login"}, func(t *testing.T) { p.ensureSite(t); p.flowLiveLogs(t, b, op) }},
		{"domain", []string{"login"}, func(t *testing.T) { p.ensureSite(t); p.flowDomain(t, b, op) }},
		{"api-key", []string{"login"}, func(t *testing.T) { p.flowAPIKey(t, op) }},
		{"customer-portal", []string{"login"}, func(t *testing.T) { p.ensureSite(t); p.flowCustomerPortal(t, b, op) }},
		{"links", nil, func(t *testing.T) { p.ensureSite(t); p.flowLinks(t) }},
		{"suspend", []string{"login"}, func(t *testing.T) { p.ensureSite(t); p.flowSuspend(t, b, op) }},
	}
	passed := map[string]bool{}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			for _, n := range s.needs {
				if !passed[n] {
					t.Skipf("needs the flow %s, which failed", n)
				}
			}
			s.run(t)
		})
		passed[s.name] = ok
	}
}

// ensureSite makes the customer and its site through the API when the
// wizard's flow did not, so that the flows after it still test their own
// pages.
func (p *uiPlatform) ensureSite(t *testing.T) {
	t.Helper()
	if p.siteID != "" {
		return
	}
	ctx := context.Background()
	if p.customerEmail = "shop@example.org"; p.customerID == "" {
		if c, err := p.store.GetCustomerByEmail(ctx, p.customerEmail); err == nil {
			p.customerID = c.ID
		} else {
			var c tenants.Customer
			p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": p.customerEmail, "name": "Shop Ltd"}, 201, &c)
			p.customerID = c.ID
		}
	}
	p.subdomain = "uishop"
	if s, err := p.store.GetSiteBySubdomain(ctx, p.subdomain); err == nil {
		p.siteID = s.ID
		return
	}
	var s tenants.Site
	p.mustAPI("POST", "/api/v1/sites", map[string]any{"customer_id": p.customerID, "template_id": p.templateID,
		"subdomain": p.subdomain, "env": map[string]string{"SITE_NAME": p.subdomain}}, 201, &s)
	p.siteID = s.ID
	t.Logf("the wizard made no site: made %s through the API", p.subdomain)
}

// checkHarness proves the tabs catch what they must: an unexpected error
// answer, a console error and an uncaught exception.
func (p *uiPlatform) checkHarness(t *testing.T, b *browser) {
	tb := b.tab(t, "harness", true)
	tb.do("opening a missing page", chromedp.Navigate(p.base+"/static/no-such-file.css"))
	tb.do("logging an error and throwing", js(`console.error('e2e: a console error'); setTimeout(() => { throw new Error('e2e: an exception'); }, 0); true`))
	tb.waitFor("the exception", `true`, time.Second)
	want := []string{"404 from " + p.base + "/static/no-such-file.css", "console error: \"e2e: a console error\"", "e2e: an exception"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tb.mu.Lock()
		got := strings.Join(tb.issues, "\n")
		tb.mu.Unlock()
		missing := ""
		for _, w := range want {
			if !strings.Contains(got, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the harness did not see %q; it saw:\n%s", missing, got)
		}
		time.Sleep(50 * time.Millisecond) // the polling interval
	}
	tb.mu.Lock()
	tb.issues = nil
	tb.mu.Unlock()
}

// Flow: log in. The admin host's / sends a stranger to the sign-in page;
// signing in lands on the overview.
func (p *uiPlatform) flowLogin(t *testing.T, op *tab) {
	op.t = t
	op.open("login", p.base+"/")
	if !strings.Contains(eval[string](op, "location.pathname"), "/login") {
		t.Fatalf("/ signed out did not lead to the sign-in page: %s", op.text())
	}
	op.do("filling the sign-in form",
		chromedp.SendKeys(chromedp.CSS("#f-email"), uiOperatorEmail),
		chromedp.SendKeys(chromedp.CSS("#f-password"), uiOperatorPassword))
	op.submit("overview", "form[action='/login']")
	if path := eval[string](op, "location.pathname"); path != "/" {
		t.Fatalf("signed in at %s, want /: %s", path, op.text())
	}
	op.wantText("Sign out")
}

// Flow: create a customer with its form, then a site for it from the
// template with the new-site wizard; the wizard ends on the site's page.
func (p *uiPlatform) flowCustomerAndSite(t *testing.T, op *tab) {
	op.t = t
	p.customerEmail = "shop@example.org"
	op.open("customers", p.base+"/customers")
	op.open("new-customer", p.base+"/customers/new")
	op.do("filling the new customer form",
		chromedp.SendKeys(chromedp.CSS("#f-email"), p.customerEmail),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "Shop Ltd"))
	op.choose("plan_id", "starter")
	op.submit("customer", "form:has(#f-email)")
	path := eval[string](op, "location.pathname")
	if !strings.HasPrefix(path, "/customers/") || path == "/customers/new" {
		t.Fatalf("after creating the customer: at %s: %s", path, op.text())
	}
	op.wantText(p.customerEmail)
	c, err := p.store.GetCustomerByEmail(context.Background(), p.customerEmail)
	if err != nil {
		t.Fatalf("the customer the form made: %v", err)
	}
	p.customerID = c.ID

	// The wizard: customer and template (a GET form: the choices stay
	// in the URL), then subdomain and env (the template's defaults filled
	// in) on the page it leads to; creating ends on the site's page.
	p.subdomain = "uishop"
	op.open("new-site", p.base+"/sites/new")
	op.choose("customer_id", p.customerEmail)
	op.choose("template_id", "testsite")
	op.submit("new-site-subdomain", "form[method=get][action='/sites/new']")
	op.wantText("Step 3")
	if env := eval[string](op, "document.querySelector('#f-env').value"); !strings.Contains(env, "DATA_DIR=/data") {
		t.Errorf("the wizard's env does not start with the template's defaults: %q", env)
	}
	op.fill("subdomain", p.subdomain)
	op.fillEnv("SITE_NAME", p.subdomain)
	op.submit("site-created", "form[method=post][action='/sites/new']")
	if path := eval[string](op, "location.pathname"); path != "/sites/"+p.subdomain {
		t.Fatalf("the wizard ended at %s: %s", path, op.text())
	}
	op.wantText(p.subdomain)
	s, err := p.store.GetSiteBySubdomain(context.Background(), p.subdomain)
	if err != nil {
		t.Fatalf("the site the wizard made: %v", err)
	}
	if s.CustomerID != p.customerID {
		t.Fatalf("the wizard's site belongs to %s, want %s", s.CustomerID, p.customerID)
	}
	p.siteID = s.ID
}

// Flow: the site's page shows it stopped; a visitor opens the site in a
// second tab (its first request starts the container) and the status
// panel (data-live, fed over server-sent events) turns to running with no
// reload.
func (p *uiPlatform) flowLiveStatus(t *testing.T, b *browser, op *tab) {
	op.t = t
	op.open("site-stopped", p.base+"/sites/"+p.siteID)
	op.waitFor("the live status panel", `!!document.querySelector('[data-live]')`, 10*time.Second)
	op.do("marking the page", js("window.__sameDocument = true"))
	if panel := strings.ToLower(eval[string](op, `document.querySelector('[data-live]').innerText`)); strings.Contains(panel, "running") ||
		!strings.Contains(panel, "never started") && !strings.Contains(panel, "stopped") {
		t.Fatalf("a new site's status panel does not say stopped or never started: %q", panel)
	}

	visitor := b.tab(t, "visitor", true)
	// While the container starts, the visitor gets the starting page
	// (503) and its readiness probe (503 until the site runs).
	visitor.expectError(regexp.QuoteMeta(host(p.subdomain)))
	visitor.do("opening the site", chromedp.Navigate(p.siteURL(host(p.subdomain), "/")))
	visitor.waitFor("the site's greeting", `document.body && document.body.innerText.includes('hello from `+p.subdomain+`')`, 40*time.Second)
	visitor.visited("site")

	op.waitFor("the status panel to say running", `document.querySelector('[data-live]').innerText.toLowerCase().includes('running')`, 40*time.Second)
	if !eval[bool](op, "window.__sameDocument === true") {
		t.Fatal("the page was reloaded: the status should change in place")
	}
	op.visited("site-running")
	op.docsShot("ui-site.png")
}

// Flow: the logs page follows the site's output live (data-follow): a
// request made after the page opened shows up in it.
func (p *uiPlatform) flowLiveLogs(t *testing.T, b *browser, op *tab) {
	op.t = t
	op.open("site-logs", p.base+"/sites/"+p.siteID+"/logs")
	op.waitFor("the followed log", `document.querySelector('pre[data-follow]') && document.getElementById('log-status').textContent.includes('following')`, 10*time.Second)
	op.do("marking the page", js("window.__sameDocument = true"))
	path := "/seen-in-the-browser-" + fmt.Sprint(time.Now().UnixNano())
	status, _, _ := p.get(host(p.subdomain), path, nil)
	if status == 0 {
		t.Fatal("no answer from the site")
	}
	op.waitFor("the request's line in the followed log", `document.querySelector('pre[data-follow]').textContent.includes(`+jsString(path)+`)`, 30*time.Second)
	if !eval[bool](op, "window.__sameDocument === true") {
		t.Fatal("the page was reloaded: the log should grow in place")
	}
	op.visited("site-logs-followed")
}

// Flow: add a custom domain on the site's domains page, which shows the DNS
// record to create; with the record in the test DNS server, verifying
// marks it verified, and the domain serves the site.
func (p *uiPlatform) flowDomain(t *testing.T, b *browser, op *tab) {
	op.t = t
	const hostname = "www.uishop-store.test"
	op.open("site-domains", p.base+"/sites/"+p.siteID+"/domains")
	op.fill("hostname", hostname)
	op.submit("domain-added", "form:has([name=hostname])")
	op.wantText(hostname)
	op.wantText("203.0.113.10") // the record to create: an A record to the public address

	p.dns.SetAddrs(hostname, "203.0.113.10")
	op.click("domain-verified", "form[action*='/verify'] button")
	op.waitFor("the domain marked verified", `document.body.innerText.includes('✓ verified') && !document.body.innerText.includes('not verified')`, 10*time.Second)
	d, err := p.store.GetDomainByHostname(context.Background(), hostname)
	if err != nil {
		t.Fatal(err)
	}
	if d.VerifiedAt == nil {
		t.Fatalf("the domain is not verified in the database: %+v; the page says %s", d, op.text())
	}
	visitor := b.tab(t, "domain-visitor", true)
	visitor.expectError(regexp.QuoteMeta(hostname)) // the starting page, if the site slept
	visitor.do("opening the custom domain", chromedp.Navigate(p.siteURL(hostname, "/")))
	visitor.waitFor("the site on its custom domain", `document.body && document.body.innerText.includes('hello from `+p.subdomain+`')`, 40*time.Second)
	visitor.visited("custom-domain")
}

// Flow: create an API key (its token shown once), call the API with it,
// revoke it on the keys page and see the API refuse it.
func (p *uiPlatform) flowAPIKey(t *testing.T, op *tab) {
	op.t = t
	op.open("keys", p.base+"/keys")
	op.fill("name", "ci-deployer")
	op.choose("scope", "read", "read")
	op.submit("key-created", "form[action='/keys']")
	token := eval[string](op, `(() => {
		for (const el of document.querySelectorAll('code, pre, input[readonly], output, kbd, samp')) {
			const v = (el.value || el.textContent || '').trim();
			if (/^[A-Za-z0-9_\-]{24,}$/.test(v)) return v;
		}
		return '';
	})()`)
	if token == "" {
		t.Fatalf("no token on the new key's page: %s", op.text())
	}
	if status, _, raw := p.api(token, "GET", "/api/v1/sites", nil, nil); status != http.StatusOK {
		t.Fatalf("the new key: %d %s", status, raw)
	}
	op.open("keys-with-new", p.base+"/keys")
	op.click("key-revoked", `form[action$='/revoke'] button[data-confirm*='ci-deployer']`)
	op.wantText("revoked")
	if status, _, raw := p.api(token, "GET", "/api/v1/sites", nil, nil); status != http.StatusUnauthorized {
		t.Fatalf("the revoked key: %d %s, want 401", status, raw)
	}
}

// Flow: the operator invites the customer (a one-time link on the page),
// the customer sets a password through it in a browser of their own, sees
// their site, and gets a 404 page with none of its data for another
// customer's site, changing the id in the URL.
func (p *uiPlatform) flowCustomerPortal(t *testing.T, b *browser, op *tab) {
	op.t = t
	op.open("customer-detail", p.base+"/customers/"+p.customerID)
	op.click("customer-invited", "form[action$='/invite'] button")
	link := eval[string](op, `(() => {
		for (const el of document.querySelectorAll('a[href*="/invite/"], code, input[readonly]')) {
			const v = el.href || el.value || el.textContent || '';
			const m = v.match(/\/invite\/[A-Za-z0-9_\-]+/);
			if (m) return m[0];
		}
		return '';
	})()`)
	if link == "" {
		t.Fatalf("no invitation link on the page: %s", op.text())
	}
	p.invitePath = link

	cust := b.tab(t, "customer", true)
	cust.open("invitation", p.base+link)
	cust.do("choosing a password",
		chromedp.SendKeys(chromedp.CSS("#f-password"), uiCustomerPassword),
		chromedp.SendKeys(chromedp.CSS("#f-confirm"), uiCustomerPassword))
	cust.submit("invitation-accepted", "form:has(#f-password)")
	cust.wantText(p.subdomain)
	// Then, as every later day: sign out, sign in with the password.
	cust.click("signed-out", "form[action='/logout'] button")
	cust.do("filling the sign-in form",
		chromedp.SendKeys(chromedp.CSS("#f-email"), p.customerEmail),
		chromedp.SendKeys(chromedp.CSS("#f-password"), uiCustomerPassword))
	cust.submit("portal-home", "form[action='/login']")
	cust.wantText("Your sites")
	cust.wantText(p.subdomain)
	if strings.Contains(cust.text(), "othersite") {
		t.Fatal("the customer's home lists another customer's site")
	}
	cust.open("portal-site", p.base+"/sites/"+p.siteID)
	cust.wantText(p.subdomain)

	cust.expectError(regexp.QuoteMeta("/sites/" + p.other.ID))
	if status := cust.open("other-customers-site", p.base+"/sites/"+p.other.ID); status != http.StatusNotFound {
		t.Errorf("another customer's site: %d, want 404", status)
	}
	body := cust.text()
	if !strings.Contains(strings.ToLower(body), "not found") {
		t.Fatalf("another customer's site: not the 404 page: %s", body)
	}
	for _, leak := range []string{"othersite", "Other Corp", "other@example.org", "s3cr3t-of-other"} {
		if strings.Contains(body, leak) {
			t.Fatalf("another customer's site: the 404 page shows %q", leak)
		}
	}
	// Nor act on it: a restart posted with the customer's own CSRF token
	// but the other site's id is refused as not found, and nothing runs.
	ctx, cancel := context.WithTimeout(cust.ctx, 20*time.Second)
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(async () => {
		const csrf = document.querySelector('input[name=csrf]').value;
		const r = await fetch('/sites/`+p.other.ID+`/actions/restart', {method: 'POST', body: new URLSearchParams({csrf})});
		return r.status;
	})()`, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil || status != http.StatusNotFound {
		t.Errorf("restarting another customer's site: %d %v, want 404", status, err)
	}
	if p.running(p.other.ID) {
		t.Error("another customer's site runs after the customer's restart")
	}
	cust.check("other-customers-restart")
	cust.expectError(regexp.QuoteMeta("/sites/" + p.other.ID + "/logs"))
	if status := cust.open("other-customers-logs", p.base+"/sites/"+p.other.ID+"/logs"); status != http.StatusNotFound {
		t.Errorf("another customer's logs: %d, want 404", status)
	}
	if body := cust.text(); strings.Contains(body, "othersite") || strings.Contains(body, "listening") {
		t.Fatalf("another customer's logs leak: %s", body)
	}
}

// Flow: suspend the customer on its page; a visitor of its site gets the
// suspended page.
func (p *uiPlatform) flowSuspend(t *testing.T, b *browser, op *tab) {
	op.t = t
	op.open("customer-before-suspend", p.base+"/customers/"+p.customerID)
	op.docsShotOverview(p)
	op.open("customer-before-suspend", p.base+"/customers/"+p.customerID)
	op.click("customer-suspended", "form[action$='/suspend'] button")
	op.wantText("suspended")
	visitor := b.tab(t, "suspended-visitor", true)
	visitor.expectError(regexp.QuoteMeta(host(p.subdomain)))
	visitor.do("opening the suspended site", chromedp.Navigate(p.siteURL(host(p.subdomain), "/")))
	visitor.waitFor("the suspended page", `document.body && document.body.innerText.includes('has been suspended')`, 20*time.Second)
	visitor.visited("suspended-page")
}

// docsShotOverview saves the overview, with a running site and an audit
// history, as the README's first picture.
func (tb *tab) docsShotOverview(p *uiPlatform) {
	tb.open("overview", p.base+"/")
	tb.docsShot("ui-overview.png")
}

// submit submits the form that selector finds, with its submit button,
// and waits for the page it leads to (a new document with an h1).
func (tb *tab) submit(page, selector string) {
	tb.t.Helper()
	tb.do("submitting "+selector,
		js("window.__e2eBefore = true; window.confirm = () => true; true"),
		js(`(() => {
			const f = document.querySelector(`+jsString(selector)+`);
			if (!f) throw new Error('no form '+`+jsString(selector)+`);
			const b = f.querySelector('button[type=submit], button:not([type]), input[type=submit]');
			if (b) b.click(); else f.requestSubmit();
			return true;
		})()`))
	tb.waitNewPage(page)
}

// click clicks the button selector finds (a one-button form: an action)
// and waits for the page it leads to.
func (tb *tab) click(page, selector string) {
	tb.t.Helper()
	tb.do("clicking "+selector,
		js("window.__e2eBefore = true; window.confirm = () => true; true"),
		js(`(() => {
			const b = document.querySelector(`+jsString(selector)+`);
			if (!b) throw new Error('nothing to click at '+`+jsString(selector)+`);
			b.click();
			return true;
		})()`))
	tb.waitNewPage(page)
}

// waitNewPage waits until the tab shows a new document, loaded, with an
// h1, and marks it visited.
func (tb *tab) waitNewPage(page string) {
	tb.t.Helper()
	tb.waitFor("the page after "+page, `!window.__e2eBefore && document.readyState === 'complete' && !!document.querySelector('h1')`, 30*time.Second)
	tb.visited(page)
}

// choose selects, in the select or radio group named name (when the page
// has one), the option whose value or text contains one of want.
func (tb *tab) choose(name string, want ...string) {
	tb.t.Helper()
	var ws []string
	for _, w := range want {
		ws = append(ws, jsString(w))
	}
	tb.do("choosing "+name, js(`(() => {
		const want = [`+strings.Join(ws, ",")+`];
		const hit = (s) => want.some((w) => (s || '').includes(w));
		const sel = document.querySelector('select[name=`+name+`]');
		if (sel) {
			for (const o of sel.options) if (hit(o.value) || hit(o.textContent)) { sel.value = o.value; return true; }
			return false;
		}
		for (const r of document.querySelectorAll('input[type=radio][name=`+name+`]')) {
			const label = r.labels && r.labels[0] ? r.labels[0].textContent : '';
			if (hit(r.value) || hit(label)) { r.checked = true; return true; }
		}
		return false;
	})()`))
}

// fill sets the input named name, when the page has one and it is empty.
func (tb *tab) fill(name, value string) {
	tb.t.Helper()
	tb.do("filling "+name, js(`(() => {
		const el = document.querySelector('input[name=`+name+`]:not([type=hidden])');
		if (el && !el.value) el.value = `+jsString(value)+`;
		return true;
	})()`))
}

// fillEnv adds KEY=value to the env textarea of the page's form (its
// KEY=VALUE lines), unless the key is there already.
func (tb *tab) fillEnv(key, value string) {
	tb.t.Helper()
	tb.do("filling the env "+key, js(`(() => {
		const ta = document.querySelector('textarea[name=env]');
		if (!ta) throw new Error('no env textarea');
		if (!ta.value.includes(`+jsString(key+"=")+`)) ta.value += (ta.value && !ta.value.endsWith('\n') ? '\n' : '') + `+jsString(key+"="+value)+`;
		return true;
	})()`))
}

// wantText fails the test unless the page's text has s.
func (tb *tab) wantText(s string) {
	tb.t.Helper()
	if text := tb.text(); !strings.Contains(text, s) {
		tb.t.Fatalf("%s: the page does not say %q: %s", tb.flow, s, text)
	}
}
