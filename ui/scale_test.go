package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The template form's autoscaling fields: the defaults in a new form, a
// value out of range the field's error, an empty field on edit keeping
// the template's; the plan form's cap on replicas, empty for none.
func TestScaleForms(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	b := tu.browser()
	b.login("op@example.com")
	ctx := context.Background()

	_, _, body := b.get("/templates/new")
	mustContain(t, "new template form", body, "Autoscaling", `name="max_replicas"`, `value="1"`, `name="target_concurrency"`, `value="10"`)
	form := url.Values{"slug": {"shop"}, "name": {"Shop"}, "image": {"example/shop:2"}, "port": {"3000"}, "max_replicas": {"0"}, "target_concurrency": {"20"}}
	if status, _, body := b.post("/templates/new", form); status != http.StatusUnprocessableEntity || !strings.Contains(body, "must be a whole number from 1 to 64") {
		t.Fatalf("max_replicas 0: %d\n%s", status, body)
	}
	form.Set("max_replicas", "3")
	form.Set("target_concurrency", "10001")
	if status, _, body := b.post("/templates/new", form); status != http.StatusUnprocessableEntity || !strings.Contains(body, "must be a whole number from 1 to 10000") {
		t.Fatalf("target_concurrency 10001: %d\n%s", status, body)
	}
	form.Set("target_concurrency", "20")
	if status, loc, _ := b.post("/templates/new", form); status != http.StatusSeeOther || loc != "/templates/shop" {
		t.Fatalf("create: %d %q", status, loc)
	}
	tm, err := tu.svc.GetTemplate(ctx, "shop")
	if err != nil || tm.MaxReplicas != 3 || tm.TargetConcurrency != 20 {
		t.Fatalf("created: %+v, %v", tm, err)
	}
	_, _, body = b.get("/templates/shop")
	mustContain(t, "template page", body, "up to 3 replicas, 20 in-flight requests each")
	_, _, body = b.get("/templates/shop/edit")
	mustContain(t, "edit form", body, `value="3"`, `value="20"`)
	edit := templateForm(tm)
	edit.Set("max_replicas", "")
	edit.Set("target_concurrency", "5")
	if status, loc, _ := b.post("/templates/shop/edit", edit); status != http.StatusSeeOther || loc != "/templates/shop" {
		t.Fatalf("edit: %d %q", status, loc)
	}
	if tm, _ = tu.svc.GetTemplate(ctx, "shop"); tm.MaxReplicas != 3 || tm.TargetConcurrency != 5 {
		t.Fatalf("edited with max_replicas empty, target 5: %+v", tm)
	}

	page(t, b, "/plans/new", "<h1>New plan</h1>")
	refused(t, b, "/plans", url.Values{"slug": {"duo"}, "name": {"Duo"}, "max_replicas": {"65"}}, http.StatusUnprocessableEntity, "must be from 1 to 64, or empty for no cap")
	posted(t, b, "/plans", url.Values{"slug": {"duo"}, "name": {"Duo"}, "max_replicas": {"2"}}, "/plans", "Plan duo added.")
	p, err := tu.svc.GetPlan(ctx, "duo")
	if err != nil || p.MaxReplicas == nil || *p.MaxReplicas != 2 {
		t.Fatalf("plan added with max replicas 2: %+v, %v", p, err)
	}
	body = page(t, b, "/plans", "<h1>Plans</h1>")
	mustContain(t, "plans list", body, "Max replicas", `<td class="num">2</td>`)
	body = page(t, b, "/plans/"+p.ID, "Plan duo")
	mustContain(t, "plan form", body, `name="max_replicas"`, `value="2"`)
	posted(t, b, "/plans/"+p.ID, url.Values{"slug": {"duo"}, "name": {"Duo"}, "max_sites": {"1"}, "max_replicas": {""}}, "/plans", "Plan duo saved.")
	if p, _ = tu.svc.GetPlan(ctx, "duo"); p.MaxReplicas != nil {
		t.Fatalf("plan saved with max replicas empty: cap %d", *p.MaxReplicas)
	}
}

// The site's page has a Scaling section: the most replicas (its plan's
// cap named when it is what limits them), the target, the replicas of
// the latest decision, and the decisions; a site of a template that does
// not scale says so. The customer's own user sees it too.
func TestSitePageScaling(t *testing.T) {
	tu := newTestUI(t, manage.Config{Verifier: quietVerifier()})
	tu.operator("op@example.com")
	ctx := context.Background()
	res, err := tu.svc.CreateTemplate(ctx, "test", manage.TemplateInput{Slug: "app", Name: "App", Image: "example/app:1", Port: 8080, MaxReplicas: 4, TargetConcurrency: 20})
	if err != nil {
		t.Fatal(err)
	}
	flat := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	if _, err := tu.svc.CreatePlan(ctx, "test", manage.PlanInput{Slug: "duo", Name: "Duo", MaxSites: 5, MaxReplicas: new(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tu.svc.UpdateCustomer(ctx, "test", a.ID, manage.CustomerPatch{Plan: new("duo")}); err != nil {
		t.Fatal(err)
	}
	site := tu.seedSite(a.ID, res.ID, "alpha", nil)
	tu.seedSite(a.ID, flat, "beta", nil)
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, e := range []tenants.ScaleEvent{
		{SiteID: site.ID, At: at, Node: "node-a", FromReplicas: 1, ToReplicas: 2, Reason: "in-flight 31.0 > target 20 x 1 replica for 6s", InFlight: 31},
		{SiteID: site.ID, At: at.Add(2 * time.Minute), Node: "node-b", FromReplicas: 2, ToReplicas: 1, Reason: "in-flight 4.2 <= target 20 x 1 replica for 60s", InFlight: 4.2},
	} {
		if err := tu.store.RecordScaleEvent(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}

	b := tu.browser()
	b.login("op@example.com")
	_, _, body := b.get("/sites/alpha")
	mustContain(t, "/sites/alpha", body, `id="h-scaling">Scaling`, "Up to 2 replicas (its plan's cap), 20 in-flight requests each",
		"Replicas after the latest decision: <strong>1</strong>",
		"<td>Dec 3, 10:02:00 UTC</td><td>2 → 1</td><td>in-flight 4.2 &lt;= target 20 x 1 replica for 60s</td><td>node-b</td>",
		"<td>Dec 3, 10:00:00 UTC</td><td>1 → 2</td><td>in-flight 31.0 &gt; target 20 x 1 replica for 6s</td><td>node-a</td>")
	_, _, body = b.get("/sites/beta")
	mustContain(t, "/sites/beta", body, "One replica: the site does not scale.", "No scaling decisions yet.")

	cb := tu.browser()
	cb.login("a@example.com")
	_, _, body = cb.get("/sites/alpha")
	mustContain(t, "the customer's /sites/alpha", body, "Up to 2 replicas", "in-flight 31.0 &gt; target 20 x 1 replica for 6s")
}
