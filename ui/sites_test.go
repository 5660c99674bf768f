package ui

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// quietVerifier asks a DNS server that is not there, so verifications
// fail at once instead of asking the world.
func quietVerifier() *manage.Verifier {
	return &manage.Verifier{Resolver: manage.NewResolver("127.0.0.1:1"), Timeout: time.Second, CNAMETarget: "sites.example.net"}
}

// seedTemplate adds a template with env defaults, one of them a secret.
func (tu *testUI) seedTemplate(slug string) string {
	tu.t.Helper()
	res, err := tu.svc.CreateTemplate(context.Background(), "test", manage.TemplateInput{Slug: slug, Name: "App " + slug,
		Image: "example/" + slug + ":1", Port: 8080, HealthPath: "/health",
		Env: map[string]string{"APP_MODE": "production", "ADMIN_PASSWORD": "template-default-pass-9931"}})
	if err != nil {
		tu.t.Fatal(err)
	}
	return res.ID
}

// seedSite adds a site of customer on template.
func (tu *testUI) seedSite(customer, template, sub string, env map[string]string) *manage.Site {
	tu.t.Helper()
	s, err := tu.svc.CreateSite(context.Background(), "test", manage.SiteInput{Customer: customer, Template: template, Subdomain: sub, Env: env})
	if err != nil {
		tu.t.Fatal(err)
	}
	return s
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Fatalf("%s does not contain %q:\n%s", what, w, body)
		}
	}
}

func TestSitesListsAndPages(t *testing.T) {
	tu := newTestUI(t, manage.Config{Verifier: quietVerifier()})
	tu.operator("op@example.com")
	tmpl := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	c, _ := tu.customerUser("c@example.com")
	tu.seedSite(a.ID, tmpl, "alpha", nil)
	tu.seedSite(c.ID, tmpl, "gamma", nil)
	b := tu.browser()
	b.login("op@example.com")

	status, _, body := b.get("/sites")
	if status != 200 {
		t.Fatalf("/sites: %d\n%s", status, body)
	}
	mustContain(t, "/sites", body, `href="/sites/alpha"`, `href="/sites/gamma"`, "a@example.com", "never started", `<a href="/templates/blog">blog</a>`)
	_, _, body = b.get("/sites?customer=" + url.QueryEscape(a.ID))
	if !strings.Contains(body, `href="/sites/alpha"`) || strings.Contains(body, `href="/sites/gamma"`) {
		t.Fatalf("filtered by customer a, the list shows only alpha:\n%s", body)
	}
	_, _, body = b.get("/sites?state=running")
	if strings.Contains(body, `href="/sites/alpha"`) || !strings.Contains(body, "No sites match the filter.") {
		t.Fatalf("no site runs:\n%s", body)
	}
	_, _, body = b.get("/sites?state=absent&customer=c%40example.com")
	if strings.Contains(body, `href="/sites/alpha"`) || !strings.Contains(body, `href="/sites/gamma"`) {
		t.Fatalf("absent sites of c: only gamma:\n%s", body)
	}
	if status, _, _ := b.get("/sites?state=bogus"); status != http.StatusUnprocessableEntity {
		t.Fatalf("an unknown state: %d", status)
	}

	for path, wants := range map[string][]string{
		"/sites/alpha":         {"<h1>alpha</h1>", "http://alpha.example.com", `data-live="/sites/alpha/status"`, `href="/sites/alpha/releases"`, `href="/sites/alpha/logs"`, `href="/sites/alpha/domains"`, "Memory", "Last 24 hours"},
		"/sites/alpha/status":  {"never started"},
		"/sites/alpha/logs":    {"this server runs no containers", `href="/sites/alpha/logs"`},
		"/sites/alpha/domains": {"The site has no custom domains.", `name="hostname"`},
		"/sites/new":           {"Step 1: customer", "a@example.com", "App blog"},
		"/templates":           {`href="/templates/blog"`, "example/blog:1"},
		"/templates/blog":      {"Template blog", "/health", "APP_MODE", "production", "History", "create"},
		"/templates/blog/edit": {"Edit template blog", `value="example/blog:1"`, "APP_MODE=production", "ADMIN_PASSWORD=********"},
		"/templates/new":       {"New template", `name="memory_bytes"`},
		"/templates/import":    {"Import templates", `enctype="multipart/form-data"`},
		"/domains":             {"No custom domains yet"},
		"/sites/new?customer_id=" + a.ID + "&template_id=" + tmpl: {"Step 3", "APP_MODE=production", "ADMIN_PASSWORD=********"},
	} {
		status, _, body := b.get(path)
		if status != 200 {
			t.Fatalf("%s: %d\n%s", path, status, body)
		}
		mustContain(t, path, body, wants...)
		if strings.Contains(body, "template-default-pass-9931") {
			t.Fatalf("%s shows a secret default:\n%s", path, body)
		}
	}

	resp, err := b.c.Get(tu.url + "/templates/export")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}

	// Actions without a container runtime say so.
	status, _, body = b.post("/sites/alpha/actions/start", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "this server runs no containers") {
		t.Fatalf("start without a runtime: %d\n%s", status, body)
	}
}

func TestSiteWizardValidation(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	tmpl := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	b := tu.browser()
	b.login("op@example.com")
	b.get("/sites/new?customer_id=" + a.ID + "&template_id=" + tmpl)

	form := url.Values{"customer_id": {a.ID}, "template_id": {tmpl}, "subdomain": {"Not_A_Label"}, "env": {"APP_MODE=production\nEXTRA=1\n"}}
	status, _, body := b.post("/sites/new", form)
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("a bad subdomain: %d\n%s", status, body)
	}
	mustContain(t, "the form again", body, "must be one lowercase DNS label", `value="Not_A_Label"`, "EXTRA=1", `aria-invalid="true"`)

	form.Set("subdomain", "www")
	_, _, body = b.post("/sites/new", form)
	mustContain(t, "a reserved subdomain", body, html.EscapeString(`"www" is reserved`))

	form.Set("subdomain", "fine")
	form.Set("env", "no equals sign here")
	status, _, body = b.post("/sites/new", form)
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("bad env: %d", status)
	}
	mustContain(t, "bad env", body, "line 1: expected KEY=VALUE", `value="fine"`)

	form.Set("customer_id", "nobody@example.com")
	form.Set("env", "")
	status, _, body = b.post("/sites/new", form)
	if status != http.StatusUnprocessableEntity && status != http.StatusNotFound || !strings.Contains(body, `value="fine"`) || !strings.Contains(body, "nobody@example.com") {
		t.Fatalf("an unknown customer: %d\n%s", status, body)
	}

	// A secret typed into a form that came back must be typed again.
	form.Set("customer_id", a.ID)
	form.Set("subdomain", "Bad")
	form.Set("env", "NEW_SECRET=typed-secret-5521")
	_, _, body = b.post("/sites/new", form)
	if strings.Contains(body, "typed-secret-5521") || !strings.Contains(body, "NEW_SECRET=********") {
		t.Fatalf("the form shows a typed secret again:\n%s", body)
	}
	form.Set("subdomain", "fine")
	form.Set("env", "NEW_SECRET=********")
	if status, _, body := b.post("/sites/new", form); status != http.StatusUnprocessableEntity || !strings.Contains(body, "NEW_SECRET: type the secret&#39;s value again") {
		t.Fatalf("a masked secret without a value: %d\n%s", status, body)
	}

	form.Set("customer_id", a.ID)
	form.Set("env", "APP_MODE=production\nADMIN_PASSWORD=********\nEXTRA=1\n")
	status, loc, body := b.post("/sites/new", form)
	if status != http.StatusSeeOther || loc != "/sites/fine" {
		t.Fatalf("create: %d %q\n%s", status, loc, body)
	}
	site, err := tu.svc.GetSite(context.Background(), "fine")
	if err != nil {
		t.Fatal(err)
	}
	if len(site.Env) != 1 || site.Env["EXTRA"] != "1" {
		t.Fatalf("only what differs from the template's defaults is the site's: %v", site.Env)
	}
}

func TestSiteEnvMasking(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	tmpl := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	tu.seedSite(a.ID, tmpl, "alpha", map[string]string{"DB_PASSWORD": "hunter2-site-secret", "API_KEY": "key-abc-771", "GREETING": "hello-there", "OLD": "x"})
	b := tu.browser()
	b.login("op@example.com")

	_, _, body := b.get("/sites/alpha")
	mustContain(t, "site page", body, "DB_PASSWORD", "API_KEY", `value="hello-there"`, `name="val.DB_PASSWORD" type="password" value=""`)
	for _, secret := range []string{"hunter2-site-secret", "key-abc-771", "template-default-pass-9931"} {
		if strings.Contains(body, secret) {
			t.Fatalf("the page shows the secret %q:\n%s", secret, body)
		}
	}

	form := url.Values{"val.DB_PASSWORD": {""}, "val.API_KEY": {"key-new-552"}, "val.GREETING": {"hi"}, "val.OLD": {"x"}, "del.OLD": {"1"},
		"env": {"NEW_TOKEN=tok-new-8812\nPLAIN=yes"}}
	status, loc, _ := b.post("/sites/alpha/env", form)
	if status != http.StatusSeeOther || loc != "/sites/alpha#env" {
		t.Fatalf("saving env: %d %q", status, loc)
	}
	site, err := tu.svc.GetSite(context.Background(), "alpha")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"DB_PASSWORD": "hunter2-site-secret", "API_KEY": "key-new-552", "GREETING": "hi", "NEW_TOKEN": "tok-new-8812", "PLAIN": "yes"}
	if len(site.Env) != len(want) {
		t.Fatalf("env: %v, want %v", site.Env, want)
	}
	for k, v := range want {
		if site.Env[k] != v {
			t.Fatalf("env: %v, want %v", site.Env, want)
		}
	}
	_, _, body = b.get("/sites/alpha")
	for _, secret := range []string{"hunter2-site-secret", "key-new-552", "tok-new-8812"} {
		if strings.Contains(body, secret) {
			t.Fatalf("the page shows the secret %q:\n%s", secret, body)
		}
	}

	// A bad line: the form comes back, the secret typed not in it.
	status, _, body = b.post("/sites/alpha/env", url.Values{"env": {"MY_SECRET=s3cr3t-typed-0042\nbroken"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "line 2: expected KEY=VALUE") || strings.Contains(body, "s3cr3t-typed-0042") {
		t.Fatalf("a bad env line: %d\n%s", status, body)
	}

	status, loc, _ = b.post("/sites/alpha/delete", url.Values{"purge": {"1"}})
	if status != http.StatusSeeOther || loc != "/sites" {
		t.Fatalf("deleting: %d %q", status, loc)
	}
	if _, err := tu.svc.GetSite(context.Background(), "alpha"); !manage.IsCode(err, manage.NotFound) {
		t.Fatalf("after deleting: %v", err)
	}
}

func TestSiteDomains(t *testing.T) {
	tu := newTestUI(t, manage.Config{Verifier: quietVerifier()})
	tu.operator("op@example.com")
	tmpl := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	tu.seedSite(a.ID, tmpl, "alpha", nil)
	b := tu.browser()
	b.login("op@example.com")
	ctx := context.Background()

	b.get("/sites/alpha/domains")
	status, _, body := b.post("/sites/alpha/domains", url.Values{"hostname": {"shop.example.com"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "are the platform&#39;s own") || !strings.Contains(body, `value="shop.example.com"`) {
		t.Fatalf("a hostname under the base domain: %d\n%s", status, body)
	}
	status, loc, _ := b.post("/sites/alpha/domains", url.Values{"hostname": {"www.acme-shop.org"}})
	if status != http.StatusSeeOther || loc != "/sites/alpha/domains" {
		t.Fatalf("adding: %d %q", status, loc)
	}
	list, err := tu.svc.AllDomains(ctx, "alpha")
	if err != nil || len(list) != 1 {
		t.Fatalf("domains: %v %v", list, err)
	}
	d := list[0]
	_, _, body = b.get("/sites/alpha/domains")
	mustContain(t, "domains page", body, "www.acme-shop.org", "not verified",
		html.EscapeString(`_caddy-multitenant.www.acme-shop.org. 300 IN TXT "`+d.VerifyToken+`"`),
		"www.acme-shop.org. 300 IN CNAME sites.example.net.")
	_, _, body = b.get("/domains")
	mustContain(t, "/domains", body, "www.acme-shop.org", `href="/sites/alpha/domains"`)

	status, _, body = b.post("/sites/alpha/domains/"+d.ID+"/verify", nil)
	if status != 200 || !strings.Contains(body, "is not verified yet") || !strings.Contains(body, "What the check found: TXT _caddy-multitenant.www.acme-shop.org") {
		t.Fatalf("verifying: %d\n%s", status, body)
	}
	status, loc, _ = b.post("/sites/alpha/domains/"+d.ID+"/delete", nil)
	if status != http.StatusSeeOther || loc != "/sites/alpha/domains" {
		t.Fatalf("removing: %d %q", status, loc)
	}
	if list, _ := tu.svc.AllDomains(ctx, "alpha"); len(list) != 0 {
		t.Fatalf("after removing: %v", list)
	}
}

func TestTemplateForms(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	tu.seedTemplate("blog")
	b := tu.browser()
	b.login("op@example.com")
	ctx := context.Background()

	b.get("/templates/new")
	form := url.Values{"slug": {"shop"}, "name": {"Shop"}, "image": {"example/shop:2"}, "port": {"http"}}
	status, _, body := b.post("/templates/new", form)
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "must be a port number") || !strings.Contains(body, `value="example/shop:2"`) {
		t.Fatalf("a bad port: %d\n%s", status, body)
	}
	form.Set("port", "3000")
	form.Set("memory_bytes", "256MiB")
	form.Set("nano_cpus", "0.5")
	form.Set("egress", "deny")
	form.Set("env", "MODE=shop\nSHOP_SECRET=abc-secret-77")
	status, loc, _ := b.post("/templates/new", form)
	if status != http.StatusSeeOther || loc != "/templates/shop" {
		t.Fatalf("create: %d %q", status, loc)
	}
	tm, err := tu.svc.GetTemplate(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if tm.MemoryBytes != 256<<20 || tm.NanoCPUs != 5e8 || tm.Egress == nil || *tm.Egress || tm.Env["SHOP_SECRET"] != "abc-secret-77" {
		t.Fatalf("created: %+v", tm)
	}
	_, _, body = b.get("/templates/shop/edit")
	if strings.Contains(body, "abc-secret-77") {
		t.Fatalf("the edit form shows a secret:\n%s", body)
	}
	edit := templateForm(tm)
	edit.Set("image", "example/shop:3")
	status, loc, _ = b.post("/templates/shop/edit", edit)
	if status != http.StatusSeeOther || loc != "/templates/shop" {
		t.Fatalf("edit: %d %q", status, loc)
	}
	tm, _ = tu.svc.GetTemplate(ctx, "shop")
	if tm.Image != "example/shop:3" || tm.Version != 2 || tm.Env["SHOP_SECRET"] != "abc-secret-77" {
		t.Fatalf("edited: %+v", tm)
	}
	_, _, body = b.get("/templates/shop")
	mustContain(t, "history", body, "version", "update")

	// Import: bad JSON is the field's error; the export imports back.
	b.get("/templates/import")
	status, _, body = b.post("/templates/import", url.Values{"json": {`{"templates": [{"slug": "x"}]`}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "field-error") {
		t.Fatalf("bad import: %d\n%s", status, body)
	}
	file, _ := tu.svc.ExportTemplates(ctx)
	file.Templates[0].Slug = "blog-copy"
	data, _ := json.Marshal(file)
	status, loc, _ = b.post("/templates/import", url.Values{"json": {string(data)}})
	if status != http.StatusSeeOther || loc != "/templates" {
		t.Fatalf("import: %d %q", status, loc)
	}
	if _, err := tu.svc.GetTemplate(ctx, "blog-copy"); err != nil {
		t.Fatalf("imported: %v", err)
	}
}
