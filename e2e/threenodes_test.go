package e2e

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Three Caddy nodes on one database and engine behave as one: first
// requests spread over all three start the site once; a change through
// node A's API reaches node C within a second; a WebSocket held through
// C keeps A's and B's reapers off the site.
func TestThreeNodesAsOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{IdleTimeout: "4s", Sites: fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost)})
	nodes := []*caddytest.Process{p.caddy, p.node(), p.node()}
	a, c := nodes[0], nodes[2]
	token, _, err := p.store.CreateAPIKey(ctx, "e2e", "operator", tenants.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	api := &adminPlatform{testPlatform: p, token: token}
	s := p.site("trio", nil)
	for i, n := range nodes {
		eventually(t, 5*time.Second, fmt.Sprintf("node %d knows the site", i), func() bool {
			st, _, _, err := tryGetAt(n, host("trio"), "/.well-known/caddy-multitenant/ready", nil)
			return err == nil && st != http.StatusNotFound
		})
	}

	// 90 first requests at once, a third through each node: one container,
	// every answer the site's.
	var wg sync.WaitGroup
	errs := make(chan string, 90)
	for i := range 90 {
		wg.Add(1)
		go func(n *caddytest.Process) {
			defer wg.Done()
			st, body, _, err := tryGetAt(n, host("trio"), "/", nil)
			if err != nil || st != http.StatusOK || body != "hello from trio" {
				errs <- fmt.Sprintf("%d %q %v", st, body, err)
			}
		}(nodes[i%3])
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a first request: %s", e)
	}
	if list := p.containers(s.ID); len(list) != 1 {
		t.Fatalf("%d containers for one site across three nodes, want 1", len(list))
	}

	// A change through A's API reaches C within a second: suspending the
	// customer gives C's visitors the suspended page.
	changed := time.Now()
	api.mustAPI("PATCH", "/api/v1/customers/"+p.customer.ID, map[string]string{"status": "suspended"}, http.StatusOK, nil)
	var seen time.Duration
	eventually(t, 5*time.Second, "node C serves the suspended page", func() bool {
		st, body, _, err := tryGetAt(c, host("trio"), "/", nil)
		if err == nil && st == http.StatusServiceUnavailable && strings.Contains(body, "suspended") {
			seen = time.Since(changed)
			return true
		}
		return false
	})
	if seen > time.Second {
		t.Errorf("node C saw node A's change after %s, want within 1s", seen)
	}
	t.Logf("node A's change reached node C after %s", seen)
	api.mustAPI("PATCH", "/api/v1/customers/"+p.customer.ID, map[string]string{"status": "active"}, http.StatusOK, nil)
	eventually(t, 30*time.Second, "the site serves through C again", func() bool {
		st, body, _, err := tryGetAt(c, host("trio"), "/", nil)
		return err == nil && st == http.StatusOK && body == "hello from trio"
	})

	// A web UI session begun through A is one on C: the sessions live in
	// the database, not in a node.
	jar := p.signInOperator(a)
	if st, body := uiGetAt(t, c, jar, "/account"); st != http.StatusOK || !strings.Contains(body, uiOperatorEmail) {
		t.Fatalf("node C with the session begun through node A: %d, the account page does not show %s:\n%s", st, uiOperatorEmail, body)
	}

	// A WebSocket held through C: neither A nor B stops the site.
	first := p.containers(s.ID)
	conn := p.openUpgradedAt(c, host("trio"))
	time.Sleep(10 * time.Second) // more than twice the idle timeout
	if !p.running(s.ID) {
		t.Fatal("a node stopped the site while C held a WebSocket to it")
	}
	echoes(t, conn, "WebSocket through C after the idle timeout")
	conn.Close()
	if now := p.containers(s.ID); len(now) != 1 || len(first) != 1 || now[0].ID != first[0].ID {
		t.Fatalf("containers changed while the site was in use: %v → %v", first, now)
	}
	eventually(t, 30*time.Second, "the site stops once no node uses it", func() bool { return !p.running(s.ID) })
	if n := a.Metric("caddy_tenants_idle_stops_total") + nodes[1].Metric("caddy_tenants_idle_stops_total") + c.Metric("caddy_tenants_idle_stops_total"); n < 1 {
		t.Errorf("%v idle stops after the WebSocket closed, want at least 1", n)
	}
}

// nodeClient is a browser of the admin host whose every connection goes to
// node, with the cookies of jar.
func nodeClient(t *testing.T, node *caddytest.Process, jar http.CookieJar) *http.Client {
	addr := node.HTTP
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}
}

// uiGetAt fetches path of the admin host through node.
func uiGetAt(t *testing.T, node *caddytest.Process, jar http.CookieJar, path string) (int, string) {
	t.Helper()
	resp, err := nodeClient(t, node, jar).Get("http://" + adminHost + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// signInAt posts the web UI's sign-in form through node, as a browser
// would, keeping the session cookie in jar.
func signInAt(t *testing.T, node *caddytest.Process, jar http.CookieJar, email, password string) {
	t.Helper()
	status, body := uiGetAt(t, node, jar, "/login")
	m := csrfInput.FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("the sign-in page: %d %s", status, body)
	}
	form := url.Values{"csrf": {html.UnescapeString(m[1])}, "email": {email}, "password": {password}, "next": {"/"}}
	resp, err := nodeClient(t, node, jar).PostForm("http://"+adminHost+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.Request.URL.Path == "/login" || !strings.Contains(string(page), "Sign out") {
		t.Fatalf("signing in as %s: %d at %s: %s", email, resp.StatusCode, resp.Request.URL, page)
	}
}

// signInOperator adds the web UI's operator and signs in through node,
// returning the jar that holds the session.
func (p *testPlatform) signInOperator(node *caddytest.Process) http.CookieJar {
	t := p.t
	t.Helper()
	hash, err := manage.HashPassword(uiOperatorPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.store.CreateUser(context.Background(), "e2e", &tenants.User{Email: uiOperatorEmail, Name: "Ops", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	signInAt(t, node, jar, uiOperatorEmail, uiOperatorPassword)
	return jar
}
