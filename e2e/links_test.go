package e2e

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The link checker: signed in as an operator, then as a customer's user,
// it crawls the UI of a seeded platform breadth-first from / over every
// same-host link and every form's GET action, and fails on a 404 or a
// 500, on an HTML page without exactly one h1, and on a link whose query
// is escaped twice.

// maxCrawl bounds a crawl (filters and pages of lists make many URLs).
const maxCrawl = 600

// flowLinks seeds what the flows have not made yet and crawls as both
// kinds of user.
func (p *uiPlatform) flowLinks(t *testing.T) {
	ctx := context.Background()
	// The seeded platform: a customer with a site (the flows'), a plan, a
	// template, a domain, an API key (the platform's own) and the audit
	// history all of it left. One more domain, in case the domain flow
	// failed, and a user of the customer to crawl as.
	p.mustAPI("POST", "/api/v1/sites/"+p.other.ID+"/domains", map[string]any{"hostname": "links.other-shop.test"}, 201, nil)
	hash, err := manage.HashPassword(uiCustomerPassword)
	if err != nil {
		t.Fatal(err)
	}
	crawler := &tenants.User{Email: "crawler@shop.example.org", Name: "Crawler", PasswordHash: hash, CustomerID: &p.customerID}
	if err := p.store.CreateUser(ctx, "e2e", crawler); err != nil {
		t.Fatal(err)
	}

	n := p.crawl(t, uiOperatorEmail, uiOperatorPassword)
	t.Logf("link checker: %d distinct pages crawled as an operator", n)
	m := p.crawl(t, crawler.Email, uiCustomerPassword)
	t.Logf("link checker: %d distinct pages crawled as a customer's user", m)
}

// crawl signs in as email and checks every page it can reach; it returns
// how many distinct URLs it fetched.
func (p *uiPlatform) crawl(t *testing.T, email, password string) int {
	t.Helper()
	c := p.uiClient(t)
	c.signIn(t, email, password)

	seen := map[string]bool{"/": true}
	queue := []string{"/"}
	from := map[string]string{}
	crawled := 0
	for len(queue) > 0 {
		target := queue[0]
		queue = queue[1:]
		if crawled >= maxCrawl {
			t.Errorf("crawl as %s: more than %d pages; stopping (left: %d)", email, maxCrawl, len(queue))
			break
		}
		crawled++
		status, ctype, body := c.get(t, target)
		if testing.Verbose() {
			t.Logf("crawl as %s: %d %s", email, status, target)
		}
		where := target
		if f := from[target]; f != "" {
			where += " (linked from " + f + ")"
		}
		if status == http.StatusNotFound || status >= 500 {
			t.Errorf("crawl as %s: %s: %d", email, where, status)
			continue
		}
		if status >= 400 {
			t.Logf("crawl as %s: %s: %d", email, where, status)
		}
		if mt, _, _ := mime.ParseMediaType(ctype); mt != "text/html" {
			continue
		}
		if n := countH1(body); n != 1 {
			t.Errorf("crawl as %s: %s: %d h1 elements, want 1", email, where, n)
		}
		for _, link := range pageLinks(target, body) {
			// Nothing seeded has a % in it: an escaped % in a link is a
			// value escaped twice, a link that finds the wrong thing.
			if doubleEscaped.MatchString(link) {
				t.Errorf("crawl as %s: %s links %s: escaped twice", email, target, link)
			}
			if !seen[link] {
				seen[link] = true
				from[link] = target
				queue = append(queue, link)
			}
		}
	}
	return crawled
}

var doubleEscaped = regexp.MustCompile(`%25[0-9A-Fa-f]{2}`)

var h1Tag = regexp.MustCompile(`(?i)<h1[\s>]`)

func countH1(body []byte) int { return len(h1Tag.FindAllIndex(body, -1)) }

// pageLinks are the same-host targets of a page's links (a href) and of
// its forms that GET, resolved against the page's path, without
// fragments.
func pageLinks(page string, body []byte) []string {
	base, _ := url.Parse(page)
	var out []string
	add := func(ref string) {
		u, err := base.Parse(strings.TrimSpace(ref))
		if err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") || u.Host != "" && u.Host != base.Host {
			return
		}
		if u.Scheme != "" || u.Host != "" {
			return // absolute: another host (the sites, Stripe)
		}
		u.Fragment = ""
		out = append(out, u.RequestURI())
	}
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return out
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		attr := func(name string) (string, bool) {
			for _, a := range tok.Attr {
				if a.Key == name {
					return a.Val, true
				}
			}
			return "", false
		}
		switch tok.Data {
		case "a":
			if href, ok := attr("href"); ok && !strings.HasPrefix(href, "mailto:") {
				add(href)
			}
		case "form":
			method, _ := attr("method")
			if method == "" || strings.EqualFold(method, "get") {
				action, _ := attr("action")
				if action == "" {
					action = base.Path
				}
				add(action)
			}
		}
	}
}

// uiClient is an HTTP client of the admin host with a cookie jar, every
// connection going to the platform's Caddy.
type uiClient struct {
	p    *uiPlatform
	http *http.Client
}

func (p *uiPlatform) uiClient(t *testing.T) *uiClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.caddy.HTTP
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &uiClient{p: p, http: &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}}
}

// get fetches path; an event stream's body is not read (it never ends).
func (c *uiClient) get(t *testing.T, path string) (int, string, []byte) {
	t.Helper()
	resp, err := c.http.Get(c.p.base + path)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	ctype := resp.Header.Get("Content-Type")
	if strings.HasPrefix(ctype, "text/event-stream") {
		return resp.StatusCode, ctype, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Errorf("GET %s: reading: %v", path, err)
	}
	return resp.StatusCode, ctype, body
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn posts the sign-in form as a browser would.
func (c *uiClient) signIn(t *testing.T, email, password string) {
	t.Helper()
	status, _, body := c.get(t, "/login")
	m := csrfInput.FindSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("the sign-in page: %d %s", status, body)
	}
	form := url.Values{"csrf": {html.UnescapeString(string(m[1]))}, "email": {email}, "password": {password}, "next": {"/"}}
	resp, err := c.http.PostForm(c.p.base+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.Request.URL.Path == "/login" {
		t.Fatalf("signing in as %s: %d at %s: %s", email, resp.StatusCode, resp.Request.URL, page)
	}
	if !bytes.Contains(page, []byte("Sign out")) {
		t.Fatalf("signing in as %s: not signed in: %s", email, page)
	}
}
