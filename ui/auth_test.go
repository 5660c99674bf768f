package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func TestSignInAndOut(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()

	status, loc, _ := b.get("/sites?state=running")
	if status != http.StatusSeeOther || loc != "/login?next=%2Fsites%3Fstate%3Drunning" {
		t.Fatalf("signed out, a page redirects to sign-in: got %d %q", status, loc)
	}
	status, _, body := b.get("/login")
	if status != 200 || !strings.Contains(body, "<h1>Sign in</h1>") || !strings.Contains(body, `lang="en"`) {
		t.Fatalf("login page: %d\n%s", status, body)
	}
	status, _, body = b.post("/login", url.Values{"email": {"op@example.com"}, "password": {"wrong password!"}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password.") {
		t.Fatalf("wrong password: %d\n%s", status, body)
	}
	status, _, body = b.post("/login", url.Values{"email": {"nobody@example.com"}, "password": {testPassword}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password.") {
		t.Fatalf("unknown email: %d (must read as a wrong password)\n%s", status, body)
	}

	b.login("op@example.com")
	jarCookies := b.c.Jar.Cookies(mustURL(t, tu.url))
	var session *http.Cookie
	for _, c := range jarCookies {
		if c.Name == SessionCookie {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after sign-in")
	}
	status, _, body = b.get("/")
	if status != 200 || !strings.Contains(body, "<h1>Overview</h1>") {
		t.Fatalf("overview: %d\n%s", status, body)
	}
	if strings.Count(body, "<h1") != 1 {
		t.Fatal("the overview has more than one h1")
	}

	// The session is in the database: a second UI (another node) on the
	// same store honours it.
	other, err := New(Config{Service: tu.svc})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "/account", nil)
	req.AddCookie(&http.Cookie{Name: SessionCookie, Value: session.Value})
	rec := newRecorder()
	other.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "op@example.com") {
		t.Fatalf("another node does not honour the session: %d", rec.Code)
	}

	b.post("/logout", nil)
	if status, loc, _ := b.get("/"); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("after sign-out: %d %q", status, loc)
	}
	// The old cookie is dead everywhere, not only forgotten by this browser.
	rec = newRecorder()
	other.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("a signed-out session still works on another node: %d", rec.Code)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()
	b.get("/login")
	form := url.Values{"email": {"op@example.com"}, "password": {testPassword}, CSRFField: {b.csrf}}
	req, _ := http.NewRequest(http.MethodPost, tu.url+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range b.c.Jar.Cookies(mustURL(t, tu.url)) {
		req.AddCookie(c)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found bool
	for _, line := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, SessionCookie+"=") && !strings.HasPrefix(line, SessionCookie+"=;") {
			found = true
			for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
				if !strings.Contains(line, attr) {
					t.Errorf("session cookie lacks %s: %s", attr, line)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no session cookie set: %v", resp.Header.Values("Set-Cookie"))
	}
}

func TestCSRF(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()
	b.login("op@example.com")
	ctx := context.Background()
	before, err := tu.store.CountUserSessions(ctx, mustUser(t, tu, "op@example.com").ID)
	if err != nil {
		t.Fatal(err)
	}

	for name, form := range map[string]url.Values{
		"without a token": {CSRFField: {""}},
		"a wrong token":   {CSRFField: {"x" + b.csrf}},
	} {
		status, _, body := b.post("/logout/everywhere", form)
		if status != http.StatusForbidden || !strings.Contains(body, "reload the page") {
			t.Errorf("a post with %s: %d\n%s", name, status, body)
		}
	}
	// Another origin, with the right token even, is refused.
	form := url.Values{CSRFField: {b.csrf}}
	req, _ := http.NewRequest(http.MethodPost, tu.url+"/logout/everywhere", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a post from another origin: %d", resp.StatusCode)
	}
	after, err := tu.store.CountUserSessions(ctx, mustUser(t, tu, "op@example.com").ID)
	if err != nil || after != before || after == 0 {
		t.Fatalf("refused posts changed something: sessions %d before, %d after (%v)", before, after, err)
	}
	// The sign-in form needs its double-submit token too.
	fresh := tu.browser()
	status, _, _ := fresh.post("/login", url.Values{"email": {"op@example.com"}, "password": {testPassword}})
	if status != http.StatusForbidden {
		t.Fatalf("a sign-in without the form's token: %d", status)
	}
}

func TestSessionExpiry(t *testing.T) {
	tu := newTestUI(t, manage.Config{}, func(c *Config) { c.SessionIdle = time.Hour; c.SessionLifetime = 2 * time.Hour })
	op := tu.operator("op@example.com")
	b := tu.browser()
	b.login("op@example.com")
	pool := tu.store.Pool()
	ctx := context.Background()

	// Idle past the timeout: signed out.
	if _, err := pool.Exec(ctx, `UPDATE user_sessions SET last_seen_at = now() - interval '61 minutes' WHERE user_id = $1`, op.ID); err != nil {
		t.Fatal(err)
	}
	if status, loc, _ := b.get("/"); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("an idle session still works: %d %q", status, loc)
	}
	// Used within the idle timeout but past its lifetime: signed out.
	b.login("op@example.com")
	if _, err := pool.Exec(ctx, `UPDATE user_sessions SET created_at = now() - interval '121 minutes', last_seen_at = now() WHERE user_id = $1`, op.ID); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := b.get("/"); status != http.StatusSeeOther {
		t.Fatalf("a session past its lifetime still works: %d", status)
	}
	// Use moves the idle expiry on, never past the lifetime.
	b.login("op@example.com")
	if _, err := pool.Exec(ctx, `UPDATE user_sessions SET last_seen_at = now() - interval '5 minutes' WHERE user_id = $1`, op.ID); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := b.get("/"); status != 200 {
		t.Fatalf("a session in use: %d", status)
	}
	var seen, expires, created time.Time
	if err := pool.QueryRow(ctx, `SELECT last_seen_at, expires_at, created_at FROM user_sessions WHERE user_id = $1`, op.ID).Scan(&seen, &expires, &created); err != nil {
		t.Fatal(err)
	}
	if time.Since(seen) > time.Minute || expires.After(created.Add(2*time.Hour).Add(time.Second)) || expires.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("touch: last seen %s, expires %s, created %s", seen, expires, created)
	}
}

func TestLoginRateLimited(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()
	b.get("/login")
	for i := range LoginBurst {
		if status, _, _ := b.post("/login", url.Values{"email": {"op@example.com"}, "password": {"guess number " + string(rune('a'+i))}}); status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, status)
		}
	}
	status, _, body := b.post("/login", url.Values{"email": {"op@example.com"}, "password": {testPassword}})
	if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") {
		t.Fatalf("after %d failures, even the right password must wait: %d", LoginBurst, status)
	}
}

func TestTOTP(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()
	b.login("op@example.com")
	status, _, body := b.post("/account/totp", nil)
	m := regexpSecret.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("enrolling: %d\n%s", status, body)
	}
	secret := m[1]
	if status, _, body := b.post("/account/totp/confirm", url.Values{"secret": {secret}, "code": {"000000"}}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "does not match") {
		t.Fatalf("a wrong code turned TOTP on: %d", status)
	}
	code, _ := totp.GenerateCode(secret, time.Now())
	if status, _, _ := b.post("/account/totp/confirm", url.Values{"secret": {secret}, "code": {code}}); status != http.StatusSeeOther {
		t.Fatalf("confirming: %d", status)
	}
	b.post("/logout", nil)

	b.get("/login")
	status, loc, _ := b.post("/login", url.Values{"email": {"op@example.com"}, "password": {testPassword}, "next": {"/sites"}})
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login/totp") {
		t.Fatalf("a password alone must ask for the code: %d %q", status, loc)
	}
	if status, loc, _ := b.get("/"); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("a session waiting for its code reached a page: %d %q", status, loc)
	}
	b.get("/login/totp")
	if status, _, _ := b.post("/login/totp", url.Values{"code": {"123456"}, "next": {"/sites"}}); status != http.StatusUnauthorized {
		t.Fatalf("a wrong code: %d", status)
	}
	code, _ = totp.GenerateCode(secret, time.Now())
	if status, loc, _ := b.post("/login/totp", url.Values{"code": {code}, "next": {"/sites"}}); status != http.StatusSeeOther || loc != "/sites" {
		t.Fatalf("the right code: %d %q", status, loc)
	}
	if status, _, body := b.get("/account"); status != 200 || !strings.Contains(body, "signing in asks for a code") {
		t.Fatalf("account after TOTP sign-in: %d", status)
	}
}

func TestInvitationWorksOnce(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	ctx := context.Background()
	c, err := tu.svc.CreateCustomer(ctx, "test", manage.CustomerInput{Email: "shop@example.com", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := tu.svc.InviteCustomerUser(ctx, "test", c.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	b := tu.browser()
	status, _, body := b.get(inv.Path)
	if status != 200 || !strings.Contains(body, "shop@example.com") {
		t.Fatalf("invitation page: %d\n%s", status, body)
	}
	if status, _, body := b.post(inv.Path, url.Values{"password": {"short"}, "confirm": {"short"}}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "at least 10") {
		t.Fatalf("a short password: %d\n%s", status, body)
	}
	if status, loc, _ := b.post(inv.Path, url.Values{"password": {testPassword}, "confirm": {testPassword}}); status != http.StatusSeeOther || loc != "/" {
		t.Fatalf("accepting: %d %q", status, loc)
	}
	if status, _, body := b.get("/account"); status != 200 || !strings.Contains(body, "customer's user") {
		t.Fatalf("signed in after accepting: %d\n%s", status, body)
	}
	if status, _, _ := tu.browser().get(inv.Path); status != http.StatusNotFound {
		t.Fatalf("a used invitation: %d", status)
	}
}

func TestLogoutEverywhere(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	one, two := tu.browser(), tu.browser()
	one.login("op@example.com")
	two.login("op@example.com")
	if status, loc, _ := one.post("/logout/everywhere", nil); status != http.StatusSeeOther || loc != "/login" {
		t.Fatalf("logout everywhere: %d %q", status, loc)
	}
	if status, _, _ := two.get("/"); status != http.StatusSeeOther {
		t.Fatalf("the other browser is still signed in: %d", status)
	}
}

func TestUnknownPageIs404(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()
	b.login("op@example.com")
	if status, _, body := b.get("/no/such/page"); status != http.StatusNotFound || !strings.Contains(body, "<h1>") {
		t.Fatalf("unknown page: %d\n%s", status, body)
	}
	if status, _, body := b.get("/static/style.css"); status != 200 || !strings.Contains(body, "--accent") {
		t.Fatalf("stylesheet: %d", status)
	}
}

func mustUser(t *testing.T, tu *testUI, email string) *tenants.User {
	t.Helper()
	u, err := tu.store.GetUserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
