package ui

import (
	"bufio"
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// releasedSite makes a site of customer c (nil: a new customer) with
// subdomain sub and three releases: 1 the baseline, 2 a change of its env
// with a secret (superseded), 3 live.
func (tu *testUI) releasedSite(customerID, sub string) *tenants.Site {
	t := tu.t
	t.Helper()
	ctx := context.Background()
	s := tu.store
	if customerID == "" {
		c := &tenants.Customer{Email: sub + "@example.org", Name: sub}
		if err := s.CreateCustomer(ctx, "test", c); err != nil {
			t.Fatal(err)
		}
		customerID = c.ID
	}
	tpl := &tenants.Template{Slug: "static-" + sub, Name: "Static", Image: "nginx:1.27", Port: 80, Env: map[string]string{"A": "1"}}
	if err := s.CreateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	site := &tenants.Site{CustomerID: customerID, TemplateID: tpl.ID, Subdomain: sub}
	if err := s.CreateSite(ctx, "test", site); err != nil {
		t.Fatal(err)
	}
	route, err := s.SiteRoute(ctx, site.ID)
	if err != nil {
		t.Fatal(err)
	}
	changed := route.Derived()
	changed.Env = map[string]string{"A": "2", "API_KEY": "s3cret-value"}
	if _, err := s.RecordRelease(ctx, "ops@example.org", site.ID, tenants.NewRelease{Kind: tenants.KindChange, Spec: changed,
		Source: route.Source(), Baseline: &tenants.Release{Spec: route.Derived(), Source: route.Source()}}); err != nil {
		t.Fatal(err)
	}
	if err := s.GoLive(ctx, site.ID, 2, "c2", "served"); err != nil {
		t.Fatal(err)
	}
	again := changed
	again.Env = map[string]string{"A": "3", "API_KEY": "0ther-s3cret"}
	if _, err := s.RecordRelease(ctx, "ops@example.org", site.ID, tenants.NewRelease{Kind: tenants.KindChange, Spec: again, Source: route.Source()}); err != nil {
		t.Fatal(err)
	}
	if err := s.GoLive(ctx, site.ID, 3, "c3", "served <again>"); err != nil {
		t.Fatal(err)
	}
	return site
}

func TestReleasesPagesOperator(t *testing.T) {
	t.Parallel()
	tu := newTestUI(t, manage.Config{})
	tu.operator("ops@example.org")
	tu.releasedSite("", "ada")
	b := tu.browser()
	b.login("ops@example.org")

	status, _, body := b.get("/sites/ada/releases")
	if status != http.StatusOK {
		t.Fatalf("releases: %d\n%s", status, body)
	}
	for _, want := range []string{`<h1>Releases of ada</h1>`, `href="/sites/ada/releases/3"`, `live`, `superseded`,
		`action="/sites/ada/releases/2/rollback"`, `action="/sites/ada/deploy?csrf=`, `enctype="multipart/form-data"`, `served &lt;again&gt;`} {
		if !strings.Contains(body, want) {
			t.Errorf("releases page lacks %s", want)
		}
	}
	if strings.Contains(body, `/releases/3/rollback"`) {
		t.Error("the live release offers a rollback to itself")
	}
	if strings.Contains(body, "s3cret") {
		t.Fatal("a secret shows on the releases page")
	}

	// The site's own page lists its latest releases, newest first.
	status, _, body = b.get("/sites/ada")
	if i3, i1 := strings.Index(body, `href="/sites/ada/releases/3"`), strings.Index(body, `href="/sites/ada/releases/1"`); status != http.StatusOK || i3 < 0 || i1 < i3 {
		t.Errorf("the site's page does not list its releases newest first: %d", status)
	}

	status, _, body = b.get("/sites/ada/releases/3")
	if status != http.StatusOK {
		t.Fatalf("release 3: %d\n%s", status, body)
	}
	for _, want := range []string{"Release #3 of ada", "<code>env.A</code>", "env.API_KEY", tenants.Masked} {
		if !strings.Contains(body, want) {
			t.Errorf("release page lacks %s", want)
		}
	}
	if strings.Contains(body, "s3cret") {
		t.Fatal("a secret shows on the release page")
	}
	if status, _, _ := b.get("/sites/ada/releases/2"); status != http.StatusOK {
		t.Fatalf("release 2: %d", status)
	}
	if status, _, _ := b.get("/sites/ada/releases/99"); status != http.StatusNotFound {
		t.Fatalf("release 99: %d", status)
	}
	if status, _, _ := b.get("/sites/nobody/releases"); status != http.StatusNotFound {
		t.Fatalf("releases of no site: %d", status)
	}

	// Without a runtime a rollback is recorded and goes live for the
	// site's next start: the flash says the new release and its outcome.
	b.get("/sites/ada/releases")
	status, loc, _ := b.post("/sites/ada/releases/2/rollback", nil)
	if status != http.StatusSeeOther || loc != "/sites/ada/releases" {
		t.Fatalf("rollback: %d %q", status, loc)
	}
	_, _, body = b.get(loc)
	if flash := regexpFlash.FindString(body); !strings.Contains(flash, "Rolled back to release 2: release 4 is live") {
		t.Fatalf("rollback flash: %s", flash)
	}
	// Errors show on the releases page, in the service's words.
	for path, want := range map[string]struct {
		status int
		text   string
	}{
		"/sites/ada/releases/4/rollback":  {http.StatusConflict, "release 4 is live already"},
		"/sites/ada/releases/99/rollback": {http.StatusUnprocessableEntity, "the site has no release 99"},
	} {
		status, _, body := b.post(path, nil)
		if status != want.status || !strings.Contains(body, want.text) || !strings.Contains(body, "<h1>Releases of ada</h1>") {
			t.Fatalf("%s: %d\n%s", path, status, body)
		}
	}
	if status, _, _ := b.post("/sites/nobody/releases/1/rollback", nil); status != http.StatusNotFound {
		t.Fatalf("rollback of no site: %d", status)
	}
}

func TestReleasesCustomerUser(t *testing.T) {
	t.Parallel()
	tu := newTestUI(t, manage.Config{})
	c, _ := tu.customerUser("cu@example.org")
	tu.releasedSite(c.ID, "mine")
	tu.releasedSite("", "theirs")
	b := tu.browser()
	b.login("cu@example.org")
	status, _, body := b.get("/sites/mine/releases")
	if status != http.StatusOK || !strings.Contains(body, `href="/sites/mine/releases/3"`) {
		t.Fatalf("own releases: %d\n%s", status, body)
	}
	if strings.Contains(body, "rollback") || strings.Contains(body, "/deploy") {
		t.Fatal("a customer's user is offered a rollback or deploy")
	}
	if status, _, _ := b.get("/sites/mine/releases/2"); status != http.StatusOK {
		t.Fatalf("own release: %d", status)
	}
	for _, p := range []string{"/sites/theirs/releases", "/sites/theirs/releases/2"} {
		if status, _, _ := b.get(p); status != http.StatusNotFound {
			t.Fatalf("%s for another customer's user: %d", p, status)
		}
	}
	b.get("/sites/mine/releases")
	if status, _, _ := b.post("/sites/mine/releases/2/rollback", nil); status != http.StatusNotFound {
		t.Fatalf("rollback by a customer's user: %d", status)
	}
}

// A deploy from the form runs as a build the browser follows; without a
// runtime it fails at once, and the build page and stream say so.
func TestDeployFollow(t *testing.T) {
	t.Parallel()
	tu := newTestUI(t, manage.Config{})
	tu.operator("ops@example.org")
	tu.releasedSite("", "ada")
	b := tu.browser()
	b.login("ops@example.org")
	b.get("/sites/ada/releases")

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("context", "site.tar.gz")
	fw.Write([]byte("not really a tar.gz"))
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, tu.url+"/sites/ada/deploy?csrf="+url.QueryEscape(b.csrf), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", tu.url)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	status, loc, page := b.read(resp)
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/sites/ada/builds/") {
		t.Fatalf("deploy: %d %q\n%s", status, loc, page)
	}
	// The stream replays, then ends with the outcome.
	sresp, err := b.c.Get(tu.url + loc + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	if ct := sresp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream: %d %s", sresp.StatusCode, ct)
	}
	var events []string
	sc := bufio.NewScanner(sresp.Body)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "event: ") || strings.HasPrefix(l, "data: ") {
				events = append(events, l)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end")
	}
	all := strings.Join(events, "\n")
	if !strings.Contains(all, "event: end") || !strings.Contains(all, "runs no containers") {
		t.Fatalf("stream:\n%s", all)
	}
	status, _, page = b.get(loc)
	if status != http.StatusOK || !strings.Contains(page, "Failed") || !strings.Contains(page, "runs no containers") || strings.Contains(page, "data-follow") {
		t.Fatalf("build page: %d\n%s", status, page)
	}
	// An unknown build: a 404 that says why.
	status, _, page = b.get("/sites/ada/builds/0123456789abcdef01234567")
	if status != http.StatusNotFound || !strings.Contains(page, "another node") {
		t.Fatalf("unknown build: %d\n%s", status, page)
	}
	// No file: the form says so.
	b.get("/sites/ada/releases")
	var empty bytes.Buffer
	mw = multipart.NewWriter(&empty)
	mw.WriteField("other", "x")
	mw.Close()
	req, _ = http.NewRequest(http.MethodPost, tu.url+"/sites/ada/deploy?csrf="+url.QueryEscape(b.csrf), &empty)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", tu.url)
	resp, err = b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, page := b.read(resp); status != http.StatusUnprocessableEntity || !strings.Contains(page, "choose a build context") {
		t.Fatalf("deploy without a file: %d\n%s", status, page)
	}
}

var regexpFlash = regexp.MustCompile(`<p class="flash"[^>]*>[^<]*</p>`)
