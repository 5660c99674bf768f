package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Create, get, list (paged and filtered), patch and delete of every
// resource, with Location headers and the audit trail.
func TestCRUD(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})

	var plan tenants.Plan
	status, h, raw := ta.do("POST", "/api/v1/plans", map[string]any{"slug": "small", "name": "Small", "max_sites": 3}, &plan)
	if status != 201 || h.Get("Location") != "/api/v1/plans/"+plan.ID {
		t.Fatalf("create plan: %d %s %s", status, h.Get("Location"), raw)
	}
	var customers []tenants.Customer
	for i := range 5 {
		var c tenants.Customer
		status, _, raw := ta.do("POST", "/api/v1/customers", CustomerInput{Email: fmt.Sprintf("c%d@example.org", i), Name: fmt.Sprintf("C %d", i), Plan: plan.ID}, &c)
		if status != 201 || c.Status != "active" || c.PlanID != plan.ID {
			t.Fatalf("create customer: %d %s", status, raw)
		}
		customers = append(customers, c)
	}
	// Pages of two walk all five in order.
	var seen []string
	after := ""
	for {
		var l list[tenants.Customer]
		ta.do("GET", "/api/v1/customers?limit=2&after="+after, nil, &l)
		for _, c := range l.Items {
			seen = append(seen, c.ID)
		}
		if l.NextAfter == "" {
			break
		}
		after = l.NextAfter
	}
	if len(seen) != 5 || seen[0] != customers[0].ID || seen[4] != customers[4].ID {
		t.Fatalf("paged listing: %v", seen)
	}
	// PATCH changes only what it names.
	var c tenants.Customer
	status, _, raw = ta.do("PATCH", "/api/v1/customers/"+customers[0].ID, `{"status":"suspended"}`, &c)
	if status != 200 || c.Status != "suspended" || c.Email != customers[0].Email || c.PlanID != plan.ID {
		t.Fatalf("patch: %d %s", status, raw)
	}
	var l list[tenants.Customer]
	ta.do("GET", "/api/v1/customers?status=suspended", nil, &l)
	if len(l.Items) != 1 || l.Items[0].ID != c.ID {
		t.Fatalf("status filter: %+v", l)
	}

	var tpl tenants.Template
	status, _, raw = ta.do("POST", "/api/v1/templates", TemplateInput{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}, &tpl)
	if status != 201 || tpl.Version != 1 {
		t.Fatalf("create template: %d %s", status, raw)
	}
	status, _, raw = ta.do("PATCH", "/api/v1/templates/"+tpl.ID, `{"image":"nginx:1.28","env":{"A":"1"}}`, &tpl)
	if status != 200 || tpl.Version != 2 || tpl.Image != "nginx:1.28" || tpl.Env["A"] != "1" || tpl.Port != 80 {
		t.Fatalf("patch template: %d %s", status, raw)
	}

	var site tenants.Site
	status, _, raw = ta.do("POST", "/api/v1/sites", SiteInput{Customer: customers[1].ID, Subdomain: "shop", Template: tpl.ID, Env: map[string]string{"X": "y"}}, &site)
	if status != 201 {
		t.Fatalf("create site: %d %s", status, raw)
	}
	var sites list[tenants.Site]
	ta.do("GET", "/api/v1/sites?customer_id="+customers[1].ID, nil, &sites)
	if len(sites.Items) != 1 {
		t.Fatalf("sites of customer: %+v", sites)
	}
	var d tenants.Domain
	status, _, raw = ta.do("POST", "/api/v1/sites/"+site.ID+"/domains", `{"hostname":"WWW.Shop.TEST."}`, &d)
	if status != 201 || d.Hostname != "www.shop.test" || d.Verified || d.VerifyToken == "" {
		t.Fatalf("add domain: %d %s", status, raw)
	}
	var domains list[tenants.Domain]
	ta.do("GET", "/api/v1/domains?site_id="+site.ID, nil, &domains)
	if len(domains.Items) != 1 {
		t.Fatalf("domains of site: %+v", domains)
	}
	status, _, raw = ta.do("PATCH", "/api/v1/domains/"+d.ID, `{"verified":true}`, &d)
	if status != 200 || !d.Verified || d.VerifiedAt == nil {
		t.Fatalf("verify by hand: %d %s", status, raw)
	}

	// Deleting a customer with sites is a conflict; with cascade it goes.
	ta.wantError("DELETE", "/api/v1/customers/"+customers[1].ID, nil, 409, CodeConflict, "")
	ta.wantError("DELETE", "/api/v1/templates/"+tpl.ID, nil, 409, CodeConflict, "")
	if status, _, raw := ta.do("DELETE", "/api/v1/customers/"+customers[1].ID+"?cascade=true", nil, nil); status != 204 {
		t.Fatalf("cascade delete: %d %s", status, raw)
	}
	ta.wantError("GET", "/api/v1/sites/"+site.ID, nil, 404, CodeNotFound, "")
	ta.wantError("GET", "/api/v1/domains/"+d.ID, nil, 404, CodeNotFound, "")
	for _, path := range []string{"/api/v1/templates/" + tpl.ID, "/api/v1/customers/" + customers[0].ID} {
		if status, _, raw := ta.do("DELETE", path, nil, nil); status != 204 {
			t.Fatalf("delete %s: %d %s", path, status, raw)
		}
	}
	ta.wantError("DELETE", "/api/v1/plans/"+plan.ID, nil, 409, CodeConflict, "")

	// The audit log names the key and holds before and after.
	var audit struct {
		Items []auditEntry `json:"items"`
	}
	ta.do("GET", "/api/v1/audit?entity=customer&entity_id="+customers[0].ID, nil, &audit)
	if len(audit.Items) != 3 || audit.Items[0].Action != "delete" || audit.Items[1].Action != "update" ||
		!strings.Contains(audit.Items[0].Actor, "writer") || audit.Items[1].Before == nil || audit.Items[1].After == nil {
		t.Fatalf("audit: %+v", audit.Items)
	}
	// By actor (a substring ignoring case, or exactly) and time.
	ta.do("GET", "/api/v1/audit?entity=customer&entity_id="+customers[0].ID+"&actor=WRITER", nil, &audit)
	if len(audit.Items) != 3 {
		t.Fatalf("audit by actor substring: %+v", audit.Items)
	}
	ta.do("GET", "/api/v1/audit?entity=customer&entity_id="+customers[0].ID+"&actor=writer&actor_exact=true", nil, &audit)
	if len(audit.Items) != 0 {
		t.Fatalf("audit by a partial actor, exactly: %+v", audit.Items)
	}
	ta.do("GET", "/api/v1/audit?entity=customer&entity_id="+customers[0].ID+"&actor="+url.QueryEscape(audit0Actor(ta, customers[0].ID))+"&actor_exact=true", nil, &audit)
	if len(audit.Items) != 3 {
		t.Fatalf("audit by actor, exactly: %+v", audit.Items)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	ta.do("GET", "/api/v1/audit?entity=customer&entity_id="+customers[0].ID+"&since="+future, nil, &audit)
	if len(audit.Items) != 0 {
		t.Fatalf("audit since the future: %+v", audit.Items)
	}
	ta.do("GET", "/api/v1/audit?entity=customer&entity_id="+customers[0].ID+"&until="+future, nil, &audit)
	if len(audit.Items) != 3 {
		t.Fatalf("audit until the future: %+v", audit.Items)
	}
}

// audit0Actor is the actor of the newest audit entry of the customer.
func audit0Actor(ta *testAPI, id string) string {
	var audit struct {
		Items []auditEntry `json:"items"`
	}
	ta.do("GET", "/api/v1/audit?entity=customer&entity_id="+id+"&limit=1", nil, &audit)
	if len(audit.Items) != 1 {
		ta.t.Fatalf("audit: %+v", audit.Items)
	}
	return audit.Items[0].Actor
}

func TestAuth(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})
	for name, token := range map[string]string{
		"missing":   "",
		"malformed": "nonsense",
		"wrong":     ta.write[:len(ta.write)-2] + "xx",
	} {
		var e errorBody
		status, h, _ := ta.doAs(token, "GET", "/api/v1/customers", nil, &e)
		if status != 401 || e.Error.Code != CodeUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s key: %d %+v", name, status, e)
		}
		// Unknown routes are 401 too: nothing is revealed.
		if status, _, _ := ta.doAs(token, "GET", "/api/v1/nothing", nil, nil); status != 401 {
			t.Errorf("%s key, unknown route: %d", name, status)
		}
	}
	if status, _, _ := ta.doAs(ta.read, "GET", "/api/v1/customers", nil, nil); status != 200 {
		t.Errorf("read key on GET: %d", status)
	}
	var e errorBody
	if status, _, _ := ta.doAs(ta.read, "POST", "/api/v1/customers", CustomerInput{Email: "a@b.org", Name: "A"}, &e); status != 403 || e.Error.Code != CodeForbidden {
		t.Errorf("read key on POST: %d %+v", status, e)
	}
	if status, _, _ := ta.doAs("", "GET", "/api/v1/openapi.json", nil, nil); status != 200 {
		t.Errorf("openapi.json without a key: %d", status)
	}
}

func TestMethodNotAllowedAndNotFound(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})
	var e errorBody
	status, h, _ := ta.do("PUT", "/api/v1/customers", `{}`, &e)
	if status != 405 || h.Get("Allow") != "GET, HEAD, POST" || e.Error.Code != CodeMethodNotAllowed {
		t.Fatalf("PUT /customers: %d Allow %q %+v", status, h.Get("Allow"), e)
	}
	ta.wantError("GET", "/api/v1/nothing", nil, 404, CodeNotFound, "")
	ta.wantError("GET", "/api/v1/sites/not-a-uuid", nil, 404, CodeNotFound, "")
	ta.wantError("GET", "/api/v1/sites/00000000-0000-0000-0000-000000000000", nil, 404, CodeNotFound, "")
	ta.wantError("POST", "/api/v1/sites/00000000-0000-0000-0000-000000000000/start", nil, 404, CodeNotFound, "")
	ta.wantError("GET", "/api/v1/customers?limit=0", nil, 422, CodeInvalid, "limit")
	ta.wantError("GET", "/api/v1/customers?after=x", nil, 422, CodeInvalid, "after")
	ta.wantError("POST", "/api/v1/customers", "email=a", http.StatusBadRequest, CodeMalformedJSON, "")
}

// PATCH of a site's warm-start settings: serve_stale true, false or null
// (the template's), prewarm off; a template's serve_stale reaches the
// site when its own is null.
func TestSiteWarmSettings(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})
	var c tenants.Customer
	ta.do("POST", "/api/v1/customers", CustomerInput{Email: "w@example.org", Name: "W"}, &c)
	var tpl tenants.Template
	if status, _, raw := ta.do("POST", "/api/v1/templates", map[string]any{"slug": "blog", "name": "Blog", "image": "nginx:1.27", "port": 80, "serve_stale": true}, &tpl); status != 201 || !tpl.ServeStale {
		t.Fatalf("create template with serve_stale: %d %s", status, raw)
	}
	var site tenants.Site
	if status, _, raw := ta.do("POST", "/api/v1/sites", SiteInput{Customer: c.ID, Subdomain: "warm", Template: tpl.ID}, &site); status != 201 || site.ServeStale != nil || !site.Prewarm {
		t.Fatalf("create site: %d %s", status, raw)
	}
	status, _, raw := ta.do("PATCH", "/api/v1/sites/"+site.ID, `{"serve_stale":false,"prewarm":false}`, &site)
	if status != 200 || site.ServeStale == nil || *site.ServeStale || site.Prewarm {
		t.Fatalf("patch serve_stale false, prewarm false: %d %s", status, raw)
	}
	status, _, raw = ta.do("PATCH", "/api/v1/sites/"+site.ID, `{"serve_stale":null}`, &site)
	if status != 200 || site.ServeStale != nil || site.Prewarm {
		t.Fatalf("patch serve_stale null: %d %s", status, raw)
	}
	if status, _, raw := ta.do("PATCH", "/api/v1/sites/"+site.ID, `{"serve_stale":"yes"}`, nil); status != 400 && status != 422 {
		t.Fatalf("patch serve_stale with a string: %d %s", status, raw)
	}
}
