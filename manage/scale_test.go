package manage

import (
	"context"
	"testing"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// TestScaleSettings: a template's max_replicas and target_concurrency and
// a plan's cap through the service: defaults when left out, a patch's 0
// or out of range refused naming the field, a plan's cap set and taken
// off with null, and the site's route carrying the effective values.
func TestScaleSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, Config{})
	res, err := s.CreateTemplate(ctx, "t", TemplateInput{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80})
	if err != nil || res.MaxReplicas != 1 || res.TargetConcurrency != 10 {
		t.Fatalf("template with the settings left out: %+v, %v", res, err)
	}
	res, err = s.CreateTemplate(ctx, "t", TemplateInput{Slug: "app", Name: "App", Image: "nginx:1.27", Port: 80, MaxReplicas: 4, TargetConcurrency: 20})
	if err != nil || res.MaxReplicas != 4 || res.TargetConcurrency != 20 {
		t.Fatalf("template with max 4, target 20: %+v, %v", res, err)
	}
	_, err = s.CreateTemplate(ctx, "t", TemplateInput{Slug: "big", Name: "Big", Image: "nginx:1.27", Port: 80, MaxReplicas: 65})
	wantCode(t, err, Invalid, "max_replicas")
	_, err = s.CreateTemplate(ctx, "t", TemplateInput{Slug: "big", Name: "Big", Image: "nginx:1.27", Port: 80, TargetConcurrency: 10001})
	wantCode(t, err, Invalid, "target_concurrency")

	if _, err := s.CreatePlan(ctx, "t", PlanInput{Slug: "small", Name: "Small", MaxReplicas: new(2)}); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreatePlan(ctx, "t", PlanInput{Slug: "huge", Name: "Huge", MaxReplicas: new(0)})
	wantCode(t, err, Invalid, "max_replicas")
	c, err := s.CreateCustomer(ctx, "t", CustomerInput{Email: "m@example.org", Name: "M", Plan: "small"})
	if err != nil {
		t.Fatal(err)
	}
	site, err := s.CreateSite(ctx, "t", SiteInput{Customer: c.ID, Template: "app", Subdomain: "app"})
	if err != nil {
		t.Fatal(err)
	}
	route := func() *tenants.Route {
		t.Helper()
		r, err := s.store.SiteRoute(ctx, site.ID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := route(); r.MaxReplicas != 2 || r.TargetConcurrency != 20 {
		t.Fatalf("template 4 on a plan capped at 2: max %d, target %d", r.MaxReplicas, r.TargetConcurrency)
	}

	for _, tc := range []struct {
		p     TemplatePatch
		field string
	}{
		{TemplatePatch{MaxReplicas: new(0)}, "max_replicas"},
		{TemplatePatch{MaxReplicas: new(65)}, "max_replicas"},
		{TemplatePatch{TargetConcurrency: new(0)}, "target_concurrency"},
		{TemplatePatch{TargetConcurrency: new(10001)}, "target_concurrency"},
	} {
		_, err := s.UpdateTemplate(ctx, "t", "app", tc.p)
		wantCode(t, err, Invalid, tc.field)
	}
	res, err = s.UpdateTemplate(ctx, "t", "app", TemplatePatch{MaxReplicas: new(8), TargetConcurrency: new(5)})
	if err != nil || res.MaxReplicas != 8 || res.TargetConcurrency != 5 {
		t.Fatalf("patch max 8, target 5: %+v, %v", res, err)
	}
	if r := route(); r.MaxReplicas != 2 || r.TargetConcurrency != 5 {
		t.Fatalf("template 8 on a plan capped at 2: max %d, target %d", r.MaxReplicas, r.TargetConcurrency)
	}

	p, err := s.UpdatePlan(ctx, "t", "small", PlanPatch{MaxReplicas: Nullable[int]{Set: true}})
	if err != nil || p.MaxReplicas != nil {
		t.Fatalf("plan cap null: %+v, %v", p, err)
	}
	if r := route(); r.MaxReplicas != 8 {
		t.Fatalf("no cap: max %d, want the template's 8", r.MaxReplicas)
	}
	p, err = s.UpdatePlan(ctx, "t", "small", PlanPatch{MaxReplicas: Nullable[int]{Set: true, Value: new(3)}})
	if err != nil || p.MaxReplicas == nil || *p.MaxReplicas != 3 {
		t.Fatalf("plan cap 3: %+v, %v", p, err)
	}
	if p, err = s.UpdatePlan(ctx, "t", "small", PlanPatch{Name: new("Small one")}); err != nil || p.MaxReplicas == nil || *p.MaxReplicas != 3 {
		t.Fatalf("a patch leaving the cap out keeps it: %+v, %v", p, err)
	}
	_, err = s.UpdatePlan(ctx, "t", "small", PlanPatch{MaxReplicas: Nullable[int]{Set: true, Value: new(65)}})
	wantCode(t, err, Invalid, "max_replicas")
	if r := route(); r.MaxReplicas != 3 {
		t.Fatalf("cap 3: max %d", r.MaxReplicas)
	}
}

// TestSiteScaleEvents: the latest of a site's scale events by id or
// subdomain, newest first; limit bounded naming it; an unknown site
// NotFound.
func TestSiteScaleEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, Config{})
	if _, err := s.CreateTemplate(ctx, "t", TemplateInput{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80, MaxReplicas: 3}); err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateCustomer(ctx, "t", CustomerInput{Email: "m@example.org", Name: "M"})
	if err != nil {
		t.Fatal(err)
	}
	site, err := s.CreateSite(ctx, "t", SiteInput{Customer: c.ID, Template: "static", Subdomain: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := s.SiteScaleEvents(ctx, "busy", 0); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("none yet: %#v, %v", list, err)
	}
	for i := 1; i <= 3; i++ {
		if err := s.store.RecordScaleEvent(ctx, &tenants.ScaleEvent{SiteID: site.ID, FromReplicas: i, ToReplicas: i + 1, Reason: "up"}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.SiteScaleEvents(ctx, site.ID, 2)
	if err != nil || len(list) != 2 || list[0].ToReplicas != 4 || list[1].ToReplicas != 3 {
		t.Fatalf("latest 2: %+v, %v", list, err)
	}
	for _, n := range []int{-1, MaxScaleEvents + 1} {
		_, err := s.SiteScaleEvents(ctx, "busy", n)
		wantCode(t, err, Invalid, "limit")
	}
	_, err = s.SiteScaleEvents(ctx, "nosuch", 1)
	wantCode(t, err, NotFound, "")
}
