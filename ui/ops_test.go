package ui

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// page fetches path as b and fails unless it answers 200 with one h1
// containing h1.
func page(t *testing.T, b *browser, path, h1 string) string {
	t.Helper()
	status, _, body := b.get(path)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, status, body)
	}
	if n := strings.Count(body, "<h1"); n != 1 {
		t.Fatalf("GET %s: %d h1 elements", path, n)
	}
	if !strings.Contains(body, h1) {
		t.Fatalf("GET %s lacks %q:\n%s", path, h1, body)
	}
	return body
}

// posted fails unless posting form to path redirects (303) to target,
// and returns the target page's body, which must show flash.
func posted(t *testing.T, b *browser, path string, form url.Values, target, flash string) string {
	t.Helper()
	status, loc, body := b.post(path, form)
	if status != http.StatusSeeOther || (target != "" && loc != target) {
		t.Fatalf("POST %s: %d %q (want 303 to %q)\n%s", path, status, loc, target, body)
	}
	_, _, body = b.get(loc)
	if !strings.Contains(body, flash) {
		t.Fatalf("after POST %s, %s lacks the flash %q:\n%s", path, loc, flash, body)
	}
	return body
}

// refused fails unless posting form to path answers status with msg.
func refused(t *testing.T, b *browser, path string, form url.Values, status int, msg string) string {
	t.Helper()
	got, _, body := b.post(path, form)
	if got != status || !strings.Contains(body, msg) {
		t.Fatalf("POST %s: %d, want %d with %q:\n%s", path, got, status, msg, body)
	}
	return body
}

func TestCustomersPages(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	ctx := context.Background()
	plan, err := tu.svc.CreatePlan(ctx, "test", manage.PlanInput{Slug: "basic", Name: "Basic"})
	if err != nil {
		t.Fatal(err)
	}
	b := tu.browser()
	b.login("op@example.com")

	page(t, b, "/customers", "<h1>Customers</h1>")
	page(t, b, "/customers/new", "<h1>New customer</h1>")
	body := refused(t, b, "/customers", url.Values{"email": {"not-an-email"}, "name": {"Acme"}}, http.StatusUnprocessableEntity, "invalid email")
	if !strings.Contains(body, `value="Acme"`) {
		t.Fatal("a failed form does not keep its values")
	}
	posted(t, b, "/customers", url.Values{"email": {"acme@example.com"}, "name": {"Acme Inc"}, "plan_id": {plan.ID}}, "", "Customer acme@example.com added.")
	refused(t, b, "/customers", url.Values{"email": {"acme@example.com"}, "name": {"Again"}}, http.StatusConflict, "already exists")
	if _, err := tu.svc.CreateCustomer(ctx, "test", manage.CustomerInput{Email: "other@example.org", Name: "Other Ltd"}); err != nil {
		t.Fatal(err)
	}
	c, err := tu.svc.GetCustomer(ctx, "acme@example.com")
	if err != nil {
		t.Fatal(err)
	}
	cpath := "/customers/" + c.ID

	// Search and filter.
	body = page(t, b, "/customers?q=ACME", "<h1>Customers</h1>")
	if !strings.Contains(body, "acme@example.com") || strings.Contains(body, "other@example.org") {
		t.Fatalf("search by q=ACME:\n%s", body)
	}
	body = page(t, b, "/customers?q=other+ltd", "<h1>Customers</h1>")
	if strings.Contains(body, "acme@example.com") || !strings.Contains(body, "other@example.org") {
		t.Fatalf("search by name:\n%s", body)
	}

	body = page(t, b, cpath, "Customer acme@example.com")
	if !strings.Contains(body, "basic") || !strings.Contains(body, "billing is not configured") {
		t.Fatalf("detail:\n%s", body)
	}

	// Suspend and resume.
	posted(t, b, cpath+"/suspend", nil, cpath, "is suspended")
	if got, _ := tu.svc.GetCustomer(ctx, c.ID); got.Status != tenants.CustomerSuspended {
		t.Fatalf("after suspend: %s", got.Status)
	}
	body = page(t, b, "/customers?status=suspended", "<h1>Customers</h1>")
	if !strings.Contains(body, "acme@example.com") || strings.Contains(body, "other@example.org") {
		t.Fatalf("filter by status:\n%s", body)
	}
	posted(t, b, cpath+"/resume", nil, cpath, "is active again")
	if got, _ := tu.svc.GetCustomer(ctx, c.ID); got.Status != tenants.CustomerActive {
		t.Fatalf("after resume: %s", got.Status)
	}

	// Edit.
	refused(t, b, cpath, url.Values{"email": {"acme@example.com"}, "name": {""}, "plan_id": {""}}, http.StatusUnprocessableEntity, "field-error")
	posted(t, b, cpath, url.Values{"email": {"acme@example.com"}, "name": {"Acme Renamed"}, "plan_id": {""}}, cpath, "saved")
	if got, _ := tu.svc.GetCustomer(ctx, c.ID); got.Name != "Acme Renamed" || got.PlanID != "" {
		t.Fatalf("after edit: %+v", got.Customer)
	}

	// The billing portal without Stripe says so.
	refused(t, b, cpath+"/portal", nil, http.StatusNotImplemented, "billing is not configured")

	// Invite: the link is shown once, absolute.
	status, _, body := b.post(cpath+"/invite", url.Values{"invite_email": {"staff@example.com"}, "invite_name": {"Staff"}})
	m := regexp.MustCompile(`(http://[^<"]+/invite/[A-Za-z0-9_-]+)`).FindStringSubmatch(body)
	if status != 200 || m == nil || !strings.HasPrefix(m[1], tu.url) {
		t.Fatalf("invite: %d\n%s", status, body)
	}
	invitedPage := page(t, b, cpath, "Customer acme@example.com")
	if strings.Contains(invitedPage, "/invite/") || !strings.Contains(invitedPage, "staff@example.com") {
		t.Fatalf("the link shows again, or the user is not listed:\n%s", invitedPage)
	}
	refused(t, b, cpath+"/invite", url.Values{"invite_email": {"op@example.com"}}, http.StatusConflict, "already exists")
	invited := tu.browser()
	if status, _, _ := invited.get(strings.TrimPrefix(m[1], tu.url)); status != 200 {
		t.Fatalf("the invitation link: %d", status)
	}

	// Delete: refused while it has sites, unless they go too.
	tpl, err := tu.svc.CreateTemplate(ctx, "test", manage.TemplateInput{Slug: "web", Name: "Web", Image: "example/web:1", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tu.svc.CreateSite(ctx, "test", manage.SiteInput{Customer: c.ID, Subdomain: "acmesite", Template: tpl.Template.ID}); err != nil {
		t.Fatal(err)
	}
	if body := page(t, b, cpath, "Customer acme@example.com"); !strings.Contains(body, "acmesite") {
		t.Fatalf("the customer's sites:\n%s", body)
	}
	refused(t, b, cpath+"/delete", nil, http.StatusConflict, "still has sites")
	body = posted(t, b, cpath+"/delete", url.Values{"cascade": {"1"}}, "/customers", "Customer removed with 1 site(s).")
	if strings.Contains(body, "acme@example.com") {
		t.Fatal("the removed customer is still listed")
	}
	if _, err := tu.svc.GetCustomer(ctx, c.ID); !manage.IsCode(err, manage.NotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if status, _, _ := b.get(cpath); status != http.StatusNotFound {
		t.Fatalf("a removed customer's page: %d", status)
	}
	if !strings.Contains(invitedPage, `data-confirm="Remove customer acme@example.com?`) {
		t.Fatal("delete has no confirmation")
	}
}

func TestPlansPages(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()
	b.login("op@example.com")
	page(t, b, "/plans", "<h1>Plans</h1>")
	page(t, b, "/plans/new", "<h1>New plan</h1>")
	refused(t, b, "/plans", url.Values{"slug": {"Bad Slug"}, "name": {"X"}}, http.StatusUnprocessableEntity, "field-error")
	refused(t, b, "/plans", url.Values{"slug": {"pro"}, "name": {"Pro"}, "memory_bytes": {"lots"}}, http.StatusUnprocessableEntity, "must be a size")
	refused(t, b, "/plans", url.Values{"slug": {"pro"}, "name": {"Pro"}, "memory_bytes": {"1MiB"}}, http.StatusUnprocessableEntity, "below Docker")
	posted(t, b, "/plans", url.Values{"slug": {"pro"}, "name": {"Pro"}, "max_sites": {"3"}, "memory_bytes": {"512MiB"}, "nano_cpus": {"0.5"}, "pids_limit": {"100"}},
		"/plans", "Plan pro added.")
	p, err := tu.svc.GetPlan(context.Background(), "pro")
	if err != nil || p.MemoryBytes != 512<<20 || p.NanoCPUs != 5e8 || p.MaxSites != 3 || p.PidsLimit != 100 {
		t.Fatalf("created plan: %+v %v", p, err)
	}
	body := page(t, b, "/plans", "<h1>Plans</h1>")
	if !strings.Contains(body, "512 MiB") || !strings.Contains(body, "0.5") {
		t.Fatalf("plans list limits:\n%s", body)
	}
	body = page(t, b, "/plans/"+p.ID, "Plan pro")
	if !strings.Contains(body, `value="512MiB"`) || !strings.Contains(body, `value="0.5"`) {
		t.Fatalf("edit form values:\n%s", body)
	}
	refused(t, b, "/plans/"+p.ID, url.Values{"slug": {"pro"}, "name": {"Pro"}, "max_sites": {"0x"}}, http.StatusUnprocessableEntity, "whole number")
	posted(t, b, "/plans/"+p.ID, url.Values{"slug": {"pro"}, "name": {"Pro Plus"}, "max_sites": {"5"}, "memory_bytes": {"1GiB"}}, "/plans", "saved")
	if p, _ = tu.svc.GetPlan(context.Background(), p.ID); p.Name != "Pro Plus" || p.MemoryBytes != 1<<30 || p.NanoCPUs != 0 {
		t.Fatalf("updated plan: %+v", p)
	}
	// In use: refused with the service's message.
	c, _ := tu.svc.CreateCustomer(context.Background(), "test", manage.CustomerInput{Email: "c@example.com", Name: "C", Plan: "pro"})
	refused(t, b, "/plans/"+p.ID+"/delete", nil, http.StatusConflict, "")
	if _, err := tu.svc.DeleteCustomer(context.Background(), "test", c.ID, false, false); err != nil {
		t.Fatal(err)
	}
	posted(t, b, "/plans/"+p.ID+"/delete", nil, "/plans", "removed")
}

func TestAdminsPages(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	me := tu.operator("op@example.com")
	tu.customerUser("cust@example.com")
	b := tu.browser()
	b.login("op@example.com")
	body := page(t, b, "/users", "<h1>Admins</h1>")
	if !strings.Contains(body, "op@example.com") || !strings.Contains(body, "cust@example.com") {
		t.Fatalf("admins page:\n%s", body)
	}
	// The last operator cannot be removed.
	refused(t, b, "/users/"+me.ID+"/delete", nil, http.StatusConflict, "this is the last operator")

	body = refused(t, b, "/users", url.Values{"email": {"second@example.com"}, "name": {"Second"}, "password": {"short"}}, http.StatusUnprocessableEntity, "field-error")
	if strings.Contains(body, `value="short"`) {
		t.Fatal("a password is sent back")
	}
	posted(t, b, "/users", url.Values{"email": {"second@example.com"}, "name": {"Second"}, "password": {testPassword}}, "/users", "Operator second@example.com added.")
	second, err := tu.svc.GetUser(context.Background(), "second@example.com")
	if err != nil {
		t.Fatal(err)
	}
	page(t, b, "/users/"+second.ID, "Operator second@example.com")

	// A new password for the second one signs it out everywhere.
	other := tu.browser()
	other.login("second@example.com")
	refused(t, b, "/users/"+second.ID+"/password", url.Values{"password": {"another long password"}, "confirm": {"different"}}, http.StatusUnprocessableEntity, "The two passwords differ.")
	posted(t, b, "/users/"+second.ID+"/password", url.Values{"password": {"another long password"}, "confirm": {"another long password"}}, "/users/"+second.ID, "New password set")
	if status, _, _ := other.get("/account"); status != http.StatusSeeOther {
		t.Fatalf("after a new password, the old session: %d", status)
	}
	if _, err := tu.svc.Authenticate(context.Background(), "second@example.com", "another long password"); err != nil {
		t.Fatal(err)
	}

	// Sign out everywhere.
	other2 := tu.browser()
	other2.get("/login")
	other2.post("/login", url.Values{"email": {"second@example.com"}, "password": {"another long password"}, "next": {"/"}})
	if status, _, _ := other2.get("/account"); status != 200 {
		t.Fatalf("second signs in: %d", status)
	}
	posted(t, b, "/users/"+second.ID+"/logout", nil, "/users/"+second.ID, "signed out everywhere")
	if status, _, _ := other2.get("/account"); status != http.StatusSeeOther {
		t.Fatalf("after sign-out everywhere: %d", status)
	}

	// With two operators, one may go.
	posted(t, b, "/users/"+second.ID+"/delete", nil, "/users", "removed")
	if _, err := tu.svc.GetUser(context.Background(), second.ID); !manage.IsCode(err, manage.NotFound) {
		t.Fatalf("after remove: %v", err)
	}
}

func TestAPIKeysPages(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()
	b.login("op@example.com")
	page(t, b, "/keys", "<h1>API keys</h1>")
	refused(t, b, "/keys", url.Values{"name": {""}, "scope": {"read"}}, http.StatusUnprocessableEntity, "field-error")
	refused(t, b, "/keys", url.Values{"name": {"ci"}, "scope": {"admin"}}, http.StatusUnprocessableEntity, "must be read or write")
	status, _, body := b.post("/keys", url.Values{"name": {"ci deploy"}, "scope": {"write"}})
	m := regexp.MustCompile(`mtk_[0-9a-f]{16}_[A-Za-z0-9_-]+`).FindString(body)
	if status != 200 || m == "" || !strings.Contains(body, "shown this once") {
		t.Fatalf("create key: %d\n%s", status, body)
	}
	key, err := tu.store.AuthenticateAPIKey(context.Background(), m)
	if err != nil || key.Name != "ci deploy" || key.Scope != "write" {
		t.Fatalf("the shown token: %+v %v", key, err)
	}
	body = page(t, b, "/keys", "<h1>API keys</h1>")
	if strings.Contains(body, m) || !strings.Contains(body, "ci deploy") || !strings.Contains(body, "data-confirm") {
		t.Fatalf("the list shows the token again, or lacks the key:\n%s", body)
	}
	posted(t, b, "/keys/"+key.KeyID+"/revoke", nil, "/keys", "revoked")
	if _, err := tu.store.AuthenticateAPIKey(context.Background(), m); err == nil {
		t.Fatal("a revoked key still authenticates")
	}
	if body := page(t, b, "/keys", "<h1>API keys</h1>"); !strings.Contains(body, "revoked") {
		t.Fatal("the list does not say revoked")
	}
}

func TestAuditPage(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	ctx := context.Background()
	a, _ := tu.svc.CreateCustomer(ctx, "alice", manage.CustomerInput{Email: "a@example.com", Name: "A"})
	if _, err := tu.svc.CreateCustomer(ctx, "bob", manage.CustomerInput{Email: "b@example.com", Name: "B"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tu.svc.CreatePlan(ctx, "alice-admin", manage.PlanInput{Slug: "p", Name: "P"}); err != nil {
		t.Fatal(err)
	}
	name := "A renamed"
	if _, err := tu.svc.UpdateCustomer(ctx, "alice", a.ID, manage.CustomerPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	b := tu.browser()
	b.login("op@example.com")
	rows := func(path string) int {
		t.Helper()
		body := page(t, b, path, "<h1>Audit log</h1>")
		return max(0, strings.Count(body, "<tr>")-1) // the header row
	}
	all := rows("/audit")
	if all < 5 {
		t.Fatalf("audit: %d rows", all)
	}
	if n := rows("/audit?entity=plan"); n != 1 {
		t.Fatalf("entity=plan: %d rows", n)
	}
	if n := rows("/audit?entity=customer&entity_id=" + a.ID); n != 2 {
		t.Fatalf("entity_id: %d rows", n)
	}
	if n := rows("/audit?actor=ALICE"); n != 3 {
		t.Fatalf("actor substring: %d rows", n)
	}
	if n := rows("/audit?actor=alice&exact=1"); n != 2 {
		t.Fatalf("actor exact: %d rows", n)
	}
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	if n := rows("/audit?since=" + future); n != 0 {
		t.Fatalf("since the future: %d rows", n)
	}
	if n := rows("/audit?until=" + future + "&since=2000-01-01"); n != all {
		t.Fatalf("until the future: %d rows of %d", n, all)
	}
	body := page(t, b, "/audit?entity=customer&entity_id="+a.ID, "<h1>Audit log</h1>")
	if !strings.Contains(body, "changed: name") || !strings.Contains(body, "<details>") {
		t.Fatalf("the update's diff:\n%s", body)
	}
	if status, _, body := b.get("/audit?since=yesterday"); status != http.StatusUnprocessableEntity || !strings.Contains(body, "must be a date") {
		t.Fatalf("bad since: %d\n%s", status, body)
	}
	if status, _, _ := b.get("/audit?entity=nope"); status != http.StatusUnprocessableEntity {
		t.Fatalf("bad entity: %d", status)
	}

	// Paging: 60 more entries, two pages, the second older.
	for i := 0; i < 60; i++ {
		if _, err := tu.svc.CreateAPIKey(ctx, "pager", "k", "read"); err != nil {
			t.Fatal(err)
		}
	}
	body = page(t, b, "/audit?actor=pager", "<h1>Audit log</h1>")
	older := regexp.MustCompile(`href="/audit(\?[^"]+)">Older entries`).FindStringSubmatch(body)
	if older == nil {
		t.Fatalf("no older link:\n%s", body)
	}
	link := strings.ReplaceAll(older[1], "&amp;", "&")
	if !strings.Contains(link, "actor=pager") {
		t.Fatalf("the older link loses the filter: %s", link)
	}
	if n := rows("/audit" + link); n != 10 {
		t.Fatalf("second page: %d rows", n)
	}
}

type fakePlatform struct{}

func (fakePlatform) Settings() any {
	return map[string]any{"base_domain": "example.com", "max_running": 5}
}
func (fakePlatform) Health(context.Context) []Check {
	return []Check{{Name: "database", OK: true}, {Name: "engine", OK: false, Detail: "cannot reach docker"}}
}
func (fakePlatform) Certificates(context.Context) ([]Certificate, error) {
	return []Certificate{{Host: "a.example.com", Issuer: "acme", NotAfter: time.Now().Add(5 * 24 * time.Hour)},
		{Host: "b.example.com", Issuer: "acme", NotAfter: time.Now().Add(60 * 24 * time.Hour)}}, nil
}
func (fakePlatform) MaxRunning() int { return 5 }

func TestPlatformPages(t *testing.T) {
	// Without a platform: say so.
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()
	b.login("op@example.com")
	if body := page(t, b, "/certificates", "<h1>Certificates</h1>"); !strings.Contains(body, "Not available") {
		t.Fatal("certificates without a platform")
	}
	if body := page(t, b, "/settings", "<h1>Settings</h1>"); !strings.Contains(body, "Not available") {
		t.Fatal("settings without a platform")
	}
	if body := page(t, b, "/billing", "<h1>Billing</h1>"); !strings.Contains(body, "No Stripe events") {
		t.Fatal("billing without events")
	}

	tu = newTestUI(t, manage.Config{}, func(c *Config) { c.Platform = fakePlatform{} })
	tu.operator("op@example.com")
	b = tu.browser()
	b.login("op@example.com")
	body := page(t, b, "/certificates", "<h1>Certificates</h1>")
	if !strings.Contains(body, "a.example.com") || strings.Count(body, "expires soon</span>") != 1 {
		t.Fatalf("certificates:\n%s", body)
	}
	body = page(t, b, "/settings", "<h1>Settings</h1>")
	if !strings.Contains(body, "&#34;base_domain&#34;: &#34;example.com&#34;") || !strings.Contains(body, "failing") || !strings.Contains(body, "cannot reach docker") {
		t.Fatalf("settings:\n%s", body)
	}
}

func TestBillingPages(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	c, _ := tu.customerUser("cust@example.com")
	ctx := context.Background()
	res, err := tu.store.ApplyBillingEvent(ctx, "stripe:evt_1", tenants.BillingEventInput{ID: "evt_1", Type: "customer.subscription.updated",
		Created: time.Now(), Payload: []byte(`{}`)}, tenants.BillingTarget{CustomerID: c.ID}, func(bc *tenants.BilledCustomer) bool {
		bc.SubscriptionStatus = "active"
		return true
	})
	if err != nil || res.Outcome != tenants.BillingApplied {
		t.Fatalf("apply: %+v %v", res, err)
	}
	if _, err := tu.store.ApplyBillingEvent(ctx, "stripe:evt_2", tenants.BillingEventInput{ID: "evt_2", Type: "invoice.paid",
		Created: time.Now(), Payload: []byte(`{}`)}, tenants.BillingTarget{}, nil); err != nil {
		t.Fatal(err)
	}
	b := tu.browser()
	b.login("op@example.com")
	body := page(t, b, "/billing", "<h1>Billing</h1>")
	if !strings.Contains(body, "evt_1") || !strings.Contains(body, "changed the customer") || !strings.Contains(body, "cust@example.com") ||
		!strings.Contains(body, "evt_2") || !strings.Contains(body, "no matching customer") {
		t.Fatalf("billing events:\n%s", body)
	}

	cu := tu.browser()
	cu.login("cust@example.com")
	body = page(t, cu, "/billing", "<h1>Billing</h1>")
	if !strings.Contains(body, "active") || !strings.Contains(body, "not available") || strings.Contains(body, "evt_1") {
		t.Fatalf("customer's billing:\n%s", body)
	}
	refused(t, cu, "/billing/portal", nil, http.StatusNotImplemented, "billing is not configured")
}
