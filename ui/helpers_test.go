package ui

import (
	"context"
	"go.uber.org/zap/zaptest"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// testUI is the UI on a fresh schema of the test database, over a real
// HTTP server.
type testUI struct {
	t     *testing.T
	url   string
	store *tenants.Store
	svc   *manage.Service
	ui    *UI
}

// testPassword is every test user's password.
const testPassword = "correct horse battery"

var testStoreOptions = tenants.Options{BaseDomain: "example.com", Reserved: []string{"admin", "www"}}

// newTestUI starts the UI over a service of cfg (its store made here);
// set, when given, changes the UI's config.
func newTestUI(t *testing.T, cfg manage.Config, set ...func(*Config)) *testUI {
	t.Helper()
	ctx := context.Background()
	schema := pgtest.Schema(t)
	pool := pgtest.Pool(t, schema)
	if _, err := tenants.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	cfg.Store = tenants.NewStore(pool, testStoreOptions)
	svc := manage.New(cfg)
	uc := Config{Service: svc, Logger: zaptest.NewLogger(t)}
	for _, s := range set {
		s(&uc)
	}
	u, err := New(uc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	return &testUI{t: t, url: srv.URL, store: cfg.Store, svc: svc, ui: u}
}

// operator adds an operator with testPassword.
func (tu *testUI) operator(email string) *manage.User {
	tu.t.Helper()
	u, err := tu.svc.CreateOperator(context.Background(), "test", email, "", testPassword)
	if err != nil {
		tu.t.Fatal(err)
	}
	return u
}

// customerUser adds a customer with email and a user of it (invited and
// accepted) with testPassword.
func (tu *testUI) customerUser(email string) (*manage.Customer, *manage.User) {
	tu.t.Helper()
	ctx := context.Background()
	c, err := tu.svc.CreateCustomer(ctx, "test", manage.CustomerInput{Email: email, Name: email})
	if err != nil {
		tu.t.Fatal(err)
	}
	inv, err := tu.svc.InviteCustomerUser(ctx, "test", c.ID, "", "")
	if err != nil {
		tu.t.Fatal(err)
	}
	u, err := tu.svc.AcceptInvitation(ctx, inv.Token, testPassword)
	if err != nil {
		tu.t.Fatal(err)
	}
	return c, u
}

// browser is a client with its own cookies, remembering the CSRF token of
// the last page it read.
type browser struct {
	tu   *testUI
	c    *http.Client
	csrf string
}

func (tu *testUI) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{tu: tu, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches path and returns the status, the Location header and the
// body; it keeps the page's CSRF token.
func (b *browser) get(path string) (int, string, string) {
	b.tu.t.Helper()
	resp, err := b.c.Get(b.tu.url + path)
	if err != nil {
		b.tu.t.Fatal(err)
	}
	return b.read(resp)
}

func (b *browser) read(resp *http.Response) (int, string, string) {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfInput.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// post submits form to path with the kept CSRF token (unless form has
// one), as a same-origin browser would.
func (b *browser) post(path string, form url.Values) (int, string, string) {
	b.tu.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !form.Has(CSRFField) {
		form.Set(CSRFField, b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.tu.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.tu.url)
	resp, err := b.c.Do(req)
	if err != nil {
		b.tu.t.Fatal(err)
	}
	return b.read(resp)
}

// login signs in as email with testPassword and fails the test unless it
// worked.
func (b *browser) login(email string) {
	b.tu.t.Helper()
	b.get("/login")
	status, loc, body := b.post("/login", url.Values{"email": {email}, "password": {testPassword}, "next": {"/"}})
	if status != http.StatusSeeOther || loc != "/" {
		b.tu.t.Fatalf("login as %s: %d %q\n%s", email, status, loc, body)
	}
	if _, _, body := b.get("/account"); !strings.Contains(body, email) {
		b.tu.t.Fatalf("after login, /account does not show %s:\n%s", email, body)
	}
}

var regexpSecret = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
