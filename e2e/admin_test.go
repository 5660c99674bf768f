package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agistaffers/caddy-multitenant/internal/dnstest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

const adminHost = "admin." + baseDomain

// adminPlatform is a Caddy built from this module with an admin site
// (tenant_admin) and a tenant site (tenant_proxy) on one port, its own
// schema, a DNS server for domain verification and a write API key.
type adminPlatform struct {
	*testPlatform
	pool  *pgxpool.Pool
	dns   *dnstest.Server
	token string
}

func newAdminPlatform(t *testing.T) *adminPlatform {
	t.Helper()
	dns := dnstest.Start(t)
	return startAdminPlatform(t, dns, platformOptions{Sites: fmt.Sprintf(`http://%s:{HTTP_PORT} {
	route {
		tenant_admin {
			max_body 64KiB
			public_ips 203.0.113.10
			dns_resolver %s
		}
	}
}`, adminHost, dns.Addr)})
}

// startAdminPlatform starts a platform without fixtures (the tests make
// their own through the API) and gives it a write API key.
func startAdminPlatform(t *testing.T, dns *dnstest.Server, opts platformOptions) *adminPlatform {
	t.Helper()
	opts.NoFixtures = true
	tp := newPlatform(t, opts)
	p := &adminPlatform{testPlatform: tp, pool: tp.store.Pool(), dns: dns}
	var err error
	if p.token, _, err = p.store.CreateAPIKey(context.Background(), "e2e", "operator", tenants.ScopeWrite); err != nil {
		t.Fatal(err)
	}
	return p
}

type apiError struct {
	Error struct {
		Code, Message, Field string
	} `json:"error"`
}

// api sends a request to the admin API through Caddy with token; body is
// sent as is when a string, else as JSON. out receives the JSON answer.
func (p *adminPlatform) api(token, method, path string, body any, out any) (int, http.Header, string) {
	p.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, "http://"+p.caddy.HTTP+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Host = adminHost
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			p.t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, resp.Header, string(data)
}

func (p *adminPlatform) mustAPI(method, path string, body any, want int, out any) http.Header {
	p.t.Helper()
	status, h, raw := p.api(p.token, method, path, body, out)
	if status != want {
		p.t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, raw)
	}
	return h
}

// mustAPIRaw is mustAPI answering the body as sent.
func (p *adminPlatform) mustAPIRaw(method, path string, body any, want int, out any) string {
	p.t.Helper()
	status, _, raw := p.api(p.token, method, path, body, out)
	if status != want {
		p.t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, raw)
	}
	return raw
}

type siteStatus struct {
	State       string `json:"state"`
	ContainerID string `json:"container_id"`
	Upstream    string `json:"upstream"`
}

// The whole life of a site, operated over HTTP through the built Caddy:
// create customer, template and site, add and verify a custom domain,
// request it (the container starts), read its logs (also following them),
// redeploy, restart, stop, check the status, delete: the host is gone.
func TestAdminSiteLifecycle(t *testing.T) {
	t.Parallel()
	p := newAdminPlatform(t)

	var customer tenants.Customer
	p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": "life@example.org", "name": "Life"}, 201, &customer)
	var tpl tenants.Template
	p.mustAPI("POST", "/api/v1/templates", map[string]any{"slug": "testsite", "name": "Test site", "image": testimage.DefaultTag,
		"port": 8080, "env": map[string]string{"DATA_DIR": "/data"}, "data_path": "/data", "health_path": "/health",
		"memory_bytes": 64 << 20, "pids_limit": 64}, 201, &tpl)
	var site tenants.Site
	h := p.mustAPI("POST", "/api/v1/sites", map[string]any{"customer_id": customer.ID, "template_id": tpl.ID,
		"subdomain": "life", "env": map[string]string{"SITE_NAME": "life"}}, 201, &site)
	if h.Get("Location") != "/api/v1/sites/"+site.ID {
		t.Fatalf("Location: %q", h.Get("Location"))
	}
	var domain tenants.Domain
	p.mustAPI("POST", "/api/v1/sites/"+site.ID+"/domains", map[string]any{"hostname": "www.life-shop.test"}, 201, &domain)

	// Unverified, the custom domain does not route.
	if status, _, _ := p.get("www.life-shop.test", "/", nil); status != http.StatusNotFound {
		t.Fatalf("unverified custom domain: %d", status)
	}
	var verify struct {
		Verified bool   `json:"verified"`
		Method   string `json:"method"`
		Reason   string `json:"reason"`
	}
	p.mustAPI("POST", "/api/v1/domains/"+domain.ID+"/verify", nil, 200, &verify)
	if verify.Verified {
		t.Fatalf("verified without DNS: %+v", verify)
	}
	p.dns.SetAddrs("www.life-shop.test", "203.0.113.10")
	p.mustAPI("POST", "/api/v1/domains/"+domain.ID+"/verify", nil, 200, &verify)
	if !verify.Verified || verify.Method != "address" {
		t.Fatalf("verify with A record: %+v", verify)
	}

	// The first request starts the container.
	eventually(t, 10*time.Second, "custom domain routes once verified", func() bool {
		status, body, _, err := p.tryGet("www.life-shop.test", "/", nil)
		return err == nil && status == http.StatusOK && body == "hello from life"
	})
	if !p.running(site.ID) {
		t.Fatal("no running container after the first request")
	}
	var st siteStatus
	p.mustAPI("GET", "/api/v1/sites/"+site.ID+"/status", nil, 200, &st)
	if st.State != "running" || st.Upstream == "" || st.ContainerID == "" {
		t.Fatalf("status while running: %+v", st)
	}

	// The engine copies the container's output to its log on its own
	// time: the request's line may come a moment after the answer.
	eventually(t, 10*time.Second, "the request in the site's logs", func() bool {
		_, _, logs := p.api(p.token, "GET", "/api/v1/sites/"+site.ID+"/logs?tail=50", nil, nil)
		return strings.Contains(logs, "listening on :8080") && strings.Contains(logs, "GET /")
	})
	p.followLogs(site.ID)

	// Redeploy makes a new container (same volume); restart keeps it.
	before := st.ContainerID
	p.mustAPI("POST", "/api/v1/sites/"+site.ID+"/redeploy", nil, 200, &st)
	if st.State != "running" || st.ContainerID == before {
		t.Fatalf("after redeploy: %+v (before %s)", st, before)
	}
	p.mustAPI("POST", "/api/v1/sites/"+site.ID+"/restart", `{}`, 200, &st)
	if st.State != "running" {
		t.Fatalf("after restart: %+v", st)
	}
	if status, body, _ := p.get(host("life"), "/", nil); status != 200 || body != "hello from life" {
		t.Fatalf("subdomain after restart: %d %q", status, body)
	}

	p.mustAPI("POST", "/api/v1/sites/"+site.ID+"/stop", nil, 200, &st)
	if st.State != "stopped" || p.running(site.ID) {
		t.Fatalf("after stop: %+v running=%v", st, p.running(site.ID))
	}
	p.mustAPI("GET", "/api/v1/sites/"+site.ID+"/status", nil, 200, &st)
	if st.State != "stopped" {
		t.Fatalf("status after stop: %+v", st)
	}
	p.mustAPI("POST", "/api/v1/sites/"+site.ID+"/start", nil, 200, &st)
	if st.State != "running" || !p.running(site.ID) {
		t.Fatalf("after start: %+v", st)
	}

	p.mustAPI("DELETE", "/api/v1/sites/"+site.ID, nil, 204, nil)
	if n := len(p.containers(site.ID)); n != 0 {
		t.Fatalf("%d containers left after delete", n)
	}
	for _, hst := range []string{"www.life-shop.test", host("life")} {
		eventually(t, 10*time.Second, hst+" is 404 after delete", func() bool {
			status, _, _, err := p.tryGet(hst, "/", nil)
			return err == nil && status == http.StatusNotFound
		})
	}
	p.mustAPI("GET", "/api/v1/sites/"+site.ID, nil, 404, nil)

	// Everything above was audited under the key's name.
	var audit struct {
		Items []struct{ Actor, Action, Entity string } `json:"items"`
	}
	p.mustAPI("GET", "/api/v1/audit?entity=site&entity_id="+site.ID, nil, 200, &audit)
	if len(audit.Items) != 2 || audit.Items[0].Action != "delete" || !strings.Contains(audit.Items[0].Actor, "operator") {
		t.Fatalf("audit of the site: %+v", audit.Items)
	}
	// Other paths of the admin host are the web UI's: its sign-in page.
	if status, body, _ := p.get(adminHost, "/login", nil); status != 200 || !strings.Contains(body, "<h1>Sign in</h1>") {
		t.Fatalf("the web UI's sign-in page: %d %q", status, body)
	}
}

// followLogs streams the site's logs and sees a request made after the
// stream began, then hangs up.
func (p *adminPlatform) followLogs(siteID string) {
	p.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.caddy.HTTP+"/api/v1/sites/"+siteID+"/logs?tail=1&follow=true", nil)
	req.Host = adminHost
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := httpClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		p.t.Fatalf("follow logs: %s", resp.Status)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	marker := fmt.Sprintf("/followed-%d", time.Now().UnixNano())
	go func() {
		time.Sleep(200 * time.Millisecond)
		p.tryGet(host("life"), marker, nil)
	}()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				p.t.Fatal("log stream ended before the new request showed")
			}
			if strings.Contains(l, marker) {
				return
			}
		case <-deadline:
			p.t.Fatal("the followed log stream did not show a new request")
		}
	}
}

// snapshot is what a rejected request must leave as it was.
type snapshot struct {
	counts tenants.Counts
	audit  int64
}

func (p *adminPlatform) snapshot() snapshot {
	p.t.Helper()
	c, err := p.store.Count(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	s := snapshot{counts: c}
	if err := p.pool.QueryRow(context.Background(), "SELECT count(*) FROM audit_log").Scan(&s.audit); err != nil {
		p.t.Fatal(err)
	}
	return s
}

// Every kind of bad input is refused with its status and field, and
// leaves the database exactly as it was.
func TestAdminBadInput(t *testing.T) {
	t.Parallel()
	p := newAdminPlatform(t)
	var customer tenants.Customer
	p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": "bad@example.org", "name": "Bad"}, 201, &customer)
	var tpl tenants.Template
	p.mustAPI("POST", "/api/v1/templates", map[string]any{"slug": "t", "name": "T", "image": testimage.DefaultTag, "port": 8080}, 201, &tpl)
	var site tenants.Site
	p.mustAPI("POST", "/api/v1/sites", map[string]any{"customer_id": customer.ID, "template_id": tpl.ID, "subdomain": "taken"}, 201, &site)
	var domain tenants.Domain
	p.mustAPI("POST", "/api/v1/sites/"+site.ID+"/domains", map[string]any{"hostname": "taken.test"}, 201, &domain)

	missing := "6f1c1d5e-0000-4000-8000-000000000000"
	newSite := func(sub, tplID string) string {
		return fmt.Sprintf(`{"customer_id":%q,"template_id":%q,"subdomain":%q}`, customer.ID, tplID, sub)
	}
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"malformed JSON", "POST", "/api/v1/customers", `{"email": "x@example.org",`, 400, "malformed_json", ""},
		{"not an object", "POST", "/api/v1/customers", `[1,2]`, 400, "invalid_type", ""},
		{"trailing data", "POST", "/api/v1/customers", `{"email":"t@example.org","name":"T"} {}`, 400, "malformed_json", ""},
		{"empty body", "POST", "/api/v1/customers", ``, 400, "malformed_json", ""},
		{"unknown field", "POST", "/api/v1/customers", `{"email":"u@example.org","name":"U","id":"x"}`, 400, "unknown_field", "id"},
		{"unknown field in patch", "PATCH", "/api/v1/sites/" + site.ID, `{"subdomian":"x"}`, 400, "unknown_field", "subdomian"},
		{"wrong type", "POST", "/api/v1/templates", `{"slug":"w","name":"W","image":"nginx:1.27","port":"80"}`, 400, "invalid_type", "port"},
		{"oversized body", "POST", "/api/v1/customers", `{"email":"o@example.org","name":"` + strings.Repeat("a", 100<<10) + `"}`, 413, "body_too_large", ""},
		{"invalid subdomain", "POST", "/api/v1/sites", newSite("Not_Valid", tpl.ID), 422, "invalid", "subdomain"},
		{"reserved subdomain", "POST", "/api/v1/sites", newSite("admin", tpl.ID), 422, "invalid", "subdomain"},
		{"duplicate subdomain", "POST", "/api/v1/sites", newSite("taken", tpl.ID), 409, "conflict", "subdomain"},
		{"duplicate subdomain by patch", "PATCH", "/api/v1/sites/" + site.ID, `{"subdomain":"admin"}`, 422, "invalid", "subdomain"},
		{"unknown template", "POST", "/api/v1/sites", newSite("fresh", missing), 422, "invalid", "template_id"},
		{"malformed template id", "POST", "/api/v1/sites", newSite("fresh", "1; DROP TABLE sites"), 422, "invalid", "template_id"},
		{"invalid hostname", "POST", "/api/v1/sites/" + site.ID + "/domains", `{"hostname":"bad host!"}`, 422, "invalid", "hostname"},
		{"ip as hostname", "POST", "/api/v1/sites/" + site.ID + "/domains", `{"hostname":"10.0.0.1"}`, 422, "invalid", "hostname"},
		{"platform hostname", "POST", "/api/v1/sites/" + site.ID + "/domains", `{"hostname":"x.example.com"}`, 422, "invalid", "hostname"},
		{"duplicate hostname", "POST", "/api/v1/domains", fmt.Sprintf(`{"site_id":%q,"hostname":"TAKEN.test"}`, site.ID), 409, "conflict", "hostname"},
		{"invalid email", "POST", "/api/v1/customers", `{"email":"nope","name":"N"}`, 422, "invalid", "email"},
		{"invalid status", "PATCH", "/api/v1/customers/" + customer.ID, `{"status":"gone"}`, 422, "invalid", "status"},
		{"invalid image", "POST", "/api/v1/templates", `{"slug":"i","name":"I","image":"UPPER CASE","port":80}`, 422, "invalid", "image"},
		{"invalid env name", "PATCH", "/api/v1/sites/" + site.ID, `{"env":{"1BAD":"x"}}`, 422, "invalid", "env"},
		{"bad limit", "GET", "/api/v1/sites?limit=100000", nil, 422, "invalid", "limit"},
		{"missing customer", "GET", "/api/v1/customers/" + missing, nil, 404, "not_found", ""},
		{"missing site patch", "PATCH", "/api/v1/sites/" + missing, `{"status":"active"}`, 404, "not_found", ""},
		{"missing site delete", "DELETE", "/api/v1/sites/" + missing, nil, 404, "not_found", ""},
		{"missing site start", "POST", "/api/v1/sites/" + missing + "/start", nil, 404, "not_found", ""},
		{"missing site logs", "GET", "/api/v1/sites/" + missing + "/logs", nil, 404, "not_found", ""},
		{"missing domain verify", "POST", "/api/v1/domains/" + missing + "/verify", nil, 404, "not_found", ""},
		{"missing template delete", "DELETE", "/api/v1/templates/" + missing, nil, 404, "not_found", ""},
		{"non-uuid id", "GET", "/api/v1/plans/1%27%20OR%201=1", nil, 404, "not_found", ""},
		{"no container yet", "GET", "/api/v1/sites/" + site.ID + "/logs", nil, 404, "not_found", ""},
		{"customer with sites", "DELETE", "/api/v1/customers/" + customer.ID, nil, 409, "conflict", ""},
		{"template in use", "DELETE", "/api/v1/templates/" + tpl.ID, nil, 409, "conflict", ""},
		{"wrong method", "PUT", "/api/v1/sites/" + site.ID, `{}`, 405, "method_not_allowed", ""},
	}
	for _, c := range cases {
		before := p.snapshot()
		var e apiError
		status, h, raw := p.api(p.token, c.method, c.path, c.body, &e)
		if status != c.status || e.Error.Code != c.code || e.Error.Field != c.field || e.Error.Message == "" {
			t.Errorf("%s: %d %s field %q, want %d %s field %q: %.300s", c.name, status, e.Error.Code, e.Error.Field, c.status, c.code, c.field, raw)
		}
		if h.Get("Content-Type") != "application/json" {
			t.Errorf("%s: Content-Type %q", c.name, h.Get("Content-Type"))
		}
		if status == 405 && h.Get("Allow") != "GET, HEAD, PATCH, DELETE" {
			t.Errorf("%s: Allow %q", c.name, h.Get("Allow"))
		}
		if after := p.snapshot(); after != before {
			t.Errorf("%s changed the database: %+v -> %+v", c.name, before, after)
		}
	}
}

// SQL metacharacters in every string field are either stored verbatim or
// refused by validation naming that field, never anything else.
func TestAdminSQLMetacharacters(t *testing.T) {
	t.Parallel()
	p := newAdminPlatform(t)
	const evil = `x'); DROP TABLE customers; -- "\ %_ $1 ;`
	var customer tenants.Customer
	p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": "sql@example.org", "name": "S"}, 201, &customer)
	var tpl tenants.Template
	p.mustAPI("POST", "/api/v1/templates", map[string]any{"slug": "sql", "name": "S", "image": testimage.DefaultTag, "port": 8080}, 201, &tpl)
	var site tenants.Site
	p.mustAPI("POST", "/api/v1/sites", map[string]any{"customer_id": customer.ID, "template_id": tpl.ID, "subdomain": "sql"}, 201, &site)

	fields := []struct {
		path, field string
		base        map[string]any
	}{
		{"/api/v1/customers", "email", map[string]any{"name": "N"}},
		{"/api/v1/customers", "name", map[string]any{"email": "n1@example.org"}},
		{"/api/v1/customers", "status", map[string]any{"email": "n2@example.org", "name": "N"}},
		{"/api/v1/customers", "plan_id", map[string]any{"email": "n3@example.org", "name": "N"}},
		{"/api/v1/customers", "stripe_customer_id", map[string]any{"email": "n4@example.org", "name": "N"}},
		{"/api/v1/customers", "stripe_subscription_id", map[string]any{"email": "n5@example.org", "name": "N"}},
		{"/api/v1/plans", "slug", map[string]any{"name": "P"}},
		{"/api/v1/plans", "name", map[string]any{"slug": "p1"}},
		{"/api/v1/plans", "stripe_price_id", map[string]any{"slug": "p2", "name": "P"}},
		{"/api/v1/templates", "slug", map[string]any{"name": "T", "image": "nginx:1.27", "port": 80}},
		{"/api/v1/templates", "name", map[string]any{"slug": "t1", "image": "nginx:1.27", "port": 80}},
		{"/api/v1/templates", "description", map[string]any{"slug": "t2", "name": "T", "image": "nginx:1.27", "port": 80}},
		{"/api/v1/templates", "image", map[string]any{"slug": "t3", "name": "T", "port": 80}},
		{"/api/v1/templates", "data_path", map[string]any{"slug": "t4", "name": "T", "image": "nginx:1.27", "port": 80}},
		{"/api/v1/templates", "health_path", map[string]any{"slug": "t5", "name": "T", "image": "nginx:1.27", "port": 80}},
		{"/api/v1/sites", "subdomain", map[string]any{"customer_id": customer.ID, "template_id": tpl.ID}},
		{"/api/v1/sites", "customer_id", map[string]any{"subdomain": "s1", "template_id": tpl.ID}},
		{"/api/v1/sites", "template_id", map[string]any{"subdomain": "s2", "customer_id": customer.ID}},
		{"/api/v1/sites", "status", map[string]any{"subdomain": "s3", "customer_id": customer.ID, "template_id": tpl.ID}},
		{"/api/v1/sites/" + site.ID + "/domains", "hostname", map[string]any{}},
	}
	for _, f := range fields {
		body := map[string]any{f.field: evil}
		if f.field == "email" {
			body[f.field] = "o'brien+" + "x--;@example.org" // a valid address with metacharacters
		}
		if f.field == "data_path" || f.field == "health_path" {
			body[f.field] = "/data'; DROP TABLE templates; --"
		}
		for k, v := range f.base {
			body[k] = v
		}
		var out map[string]any
		status, _, raw := p.api(p.token, "POST", f.path, body, &out)
		switch status {
		case 201:
			if out[f.field] != body[f.field] {
				t.Errorf("%s %s: stored %q, sent %q", f.path, f.field, out[f.field], body[f.field])
			}
		case 422:
			var e apiError
			json.Unmarshal([]byte(raw), &e)
			if e.Error.Field != f.field {
				t.Errorf("%s %s: refused naming field %q: %s", f.path, f.field, e.Error.Field, raw)
			}
		default:
			t.Errorf("%s %s: %d %s", f.path, f.field, status, raw)
		}
	}
	// Env values (map members) and names.
	var out tenants.Site
	p.mustAPI("PATCH", "/api/v1/sites/"+site.ID, map[string]any{"env": map[string]string{"EVIL": evil}}, 200, &out)
	if out.Env["EVIL"] != evil {
		t.Errorf("env value stored as %q", out.Env["EVIL"])
	}
	var e apiError
	if status, _, _ := p.api(p.token, "PATCH", "/api/v1/sites/"+site.ID, map[string]any{"env": map[string]string{evil: "x"}}, &e); status != 422 || e.Error.Field != "env" {
		t.Errorf("env name with metacharacters: %d %+v", status, e)
	}
	// Query parameters too: a status that is none is refused, naming it.
	if status, _, raw := p.api(p.token, "GET", "/api/v1/customers?status=%27%3B%20DROP%20TABLE%20customers%3B--", nil, &e); status != 422 || e.Error.Field != "status" {
		t.Errorf("status filter with metacharacters: %d %s", status, raw)
	}
	if c, err := p.store.Count(context.Background()); err != nil || c.Customers == 0 || c.Templates == 0 {
		t.Fatalf("tables after the attempts: %+v %v", c, err)
	}
}

// No key, a wrong key and a revoked key are 401 and reveal nothing; a
// read-only key cannot write.
func TestAdminAuth(t *testing.T) {
	t.Parallel()
	p := newAdminPlatform(t)
	ctx := context.Background()
	revoked, key, err := p.store.CreateAPIKey(ctx, "e2e", "old", tenants.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	readOnly, _, err := p.store.CreateAPIKey(ctx, "e2e", "viewer", tenants.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, raw := p.api(revoked, "GET", "/api/v1/customers", nil, nil); status != 200 {
		t.Fatalf("key before revocation: %d %s", status, raw)
	}
	if err := p.store.RevokeAPIKey(ctx, "e2e", key.KeyID); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for name, token := range map[string]string{
		"missing": "",
		"wrong":   p.token[:len(p.token)-4] + "AAAA",
		"garbage": "' OR 1=1 --",
		"revoked": revoked,
	} {
		for _, path := range []string{"/api/v1/customers", "/api/v1/no-such-route"} {
			before := p.snapshot()
			var e apiError
			status, h, raw := p.api(token, "POST", path, `{"email":"a@example.org","name":"A"}`, &e)
			if status != 401 || e.Error.Code != "unauthorized" || h.Get("WWW-Authenticate") != `Bearer realm="tenant_admin"` {
				t.Errorf("%s key, %s: %d %s %q", name, path, status, raw, h.Get("WWW-Authenticate"))
			}
			if p.snapshot() != before {
				t.Errorf("%s key changed the database", name)
			}
			bodies = append(bodies, raw)
		}
	}
	// Alike but for their request ids.
	ids := regexp.MustCompile(`"request_id": "[A-Z2-7]+"`)
	for _, b := range bodies[1:] {
		if ids.ReplaceAllString(b, "") != ids.ReplaceAllString(bodies[0], "") {
			t.Errorf("401 answers differ, revealing why:\n%s\n%s", bodies[0], b)
		}
	}
	if status, _, raw := p.api(readOnly, "GET", "/api/v1/sites", nil, nil); status != 200 {
		t.Errorf("read key GET: %d %s", status, raw)
	}
	before := p.snapshot()
	var e apiError
	if status, _, raw := p.api(readOnly, "POST", "/api/v1/customers", `{"email":"r@example.org","name":"R"}`, &e); status != 403 || e.Error.Code != "forbidden" {
		t.Errorf("read key POST: %d %s", status, raw)
	}
	if p.snapshot() != before {
		t.Error("read-only key changed the database")
	}
}
