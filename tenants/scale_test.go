package tenants

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// TestScaleSettings: a template's max_replicas and target_concurrency
// (1 and 10 when left out), a plan's cap on the replicas, and the route
// every request resolves carrying the effective values: the template's
// max capped by the plan's.
func TestScaleSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	c, tpl, site := fixture(t, s)

	if tpl.MaxReplicas != 1 || tpl.TargetConcurrency != 10 {
		t.Fatalf("new template: max_replicas %d, target_concurrency %d; want 1, 10", tpl.MaxReplicas, tpl.TargetConcurrency)
	}
	route := func() *Route {
		t.Helper()
		r, err := s.SiteRoute(ctx, site.ID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := route(); r.MaxReplicas != 1 || r.TargetConcurrency != 10 {
		t.Fatalf("route of a new site: max %d, target %d", r.MaxReplicas, r.TargetConcurrency)
	}

	tpl.MaxReplicas, tpl.TargetConcurrency = 4, 25
	if err := s.UpdateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTemplate(ctx, tpl.ID); err != nil || got.MaxReplicas != 4 || got.TargetConcurrency != 25 {
		t.Fatalf("template after update: %+v, %v", got, err)
	}
	if r := route(); r.MaxReplicas != 4 || r.TargetConcurrency != 25 || r.Template.MaxReplicas != 4 {
		t.Fatalf("route without a plan: max %d (template's %d), target %d; want 4, 25", r.MaxReplicas, r.Template.MaxReplicas, r.TargetConcurrency)
	}

	// A plan without a cap leaves the template's; a cap under it wins; a
	// cap over it does not raise it.
	plan := &Plan{Slug: "small", Name: "Small"}
	if err := s.CreatePlan(ctx, "test", plan); err != nil || plan.MaxReplicas != nil {
		t.Fatalf("plan without a cap: %+v, %v", plan, err)
	}
	c.PlanID = plan.ID
	if err := s.UpdateCustomer(ctx, "test", c); err != nil {
		t.Fatal(err)
	}
	if r := route(); r.MaxReplicas != 4 {
		t.Fatalf("plan without a cap: max %d, want the template's 4", r.MaxReplicas)
	}
	for _, tc := range []struct{ cap, want int }{{2, 2}, {8, 4}, {4, 4}, {1, 1}} {
		plan.MaxReplicas = &tc.cap
		if err := s.UpdatePlan(ctx, "test", plan); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetPlan(ctx, plan.ID); err != nil || got.MaxReplicas == nil || *got.MaxReplicas != tc.cap {
			t.Fatalf("plan after cap %d: %+v, %v", tc.cap, got, err)
		}
		if r := route(); r.MaxReplicas != tc.want || r.Template.MaxReplicas != 4 {
			t.Fatalf("plan cap %d on template 4: max %d, want %d", tc.cap, r.MaxReplicas, tc.want)
		}
	}
	plan.MaxReplicas = nil
	if err := s.UpdatePlan(ctx, "test", plan); err != nil {
		t.Fatal(err)
	}
	if r := route(); r.MaxReplicas != 4 {
		t.Fatalf("cap removed: max %d, want 4", r.MaxReplicas)
	}
	if list, err := s.ListPlans(ctx, Page{}); err != nil || len(list) != 1 || list[0].MaxReplicas != nil {
		t.Fatalf("ListPlans = %+v, %v", list, err)
	}

	// Out of range is an error naming the field, before any SQL.
	for _, tc := range []struct {
		max, target int
		field       string
	}{{65, 10, "max_replicas"}, {-1, 10, "max_replicas"}, {2, 10001, "target_concurrency"}, {2, -5, "target_concurrency"}} {
		bad := *tpl
		bad.MaxReplicas, bad.TargetConcurrency = tc.max, tc.target
		wantInvalid(t, s.UpdateTemplate(ctx, "test", &bad), tc.field)
	}
	// 0 is left out: the defaults (manage refuses a patch's explicit 0).
	unset := *tpl
	unset.MaxReplicas, unset.TargetConcurrency = 0, 0
	if err := s.UpdateTemplate(ctx, "test", &unset); err != nil || unset.MaxReplicas != 1 || unset.TargetConcurrency != 10 {
		t.Fatalf("update with the settings left out: %+v, %v", unset, err)
	}
	if err := s.UpdateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, s.CreateTemplate(ctx, "test", &Template{Slug: "big", Name: "Big", Image: "nginx:1.27", Port: 80, MaxReplicas: 100}), "max_replicas")
	for _, n := range []int{0, 65} {
		p := *plan
		p.MaxReplicas = &n
		wantInvalid(t, s.UpdatePlan(ctx, "test", &p), "max_replicas")
	}
	// The database's own checks stand behind the store's.
	if _, err := s.pool.Exec(ctx, `UPDATE templates SET max_replicas = 0`); err == nil {
		t.Fatal("the database took max_replicas 0")
	}
	if _, err := s.pool.Exec(ctx, `UPDATE plans SET max_replicas = 65`); err == nil {
		t.Fatal("the database took a plan's max_replicas 65")
	}

	// A template file without the settings (the built-in catalog, an
	// export from before them) gets the defaults; with them, keeps them.
	list, err := ParseTemplates([]byte(`{"templates":[{"slug":"a","name":"A","image":"nginx:1.27","port":80},
		{"slug":"b","name":"B","image":"nginx:1.27","port":80,"max_replicas":3,"target_concurrency":50}]}`))
	if err != nil || list[0].MaxReplicas != 1 || list[0].TargetConcurrency != 10 || list[1].MaxReplicas != 3 || list[1].TargetConcurrency != 50 {
		t.Fatalf("ParseTemplates = %+v, %v", list, err)
	}
	if _, err := ParseTemplates([]byte(`{"templates":[{"slug":"a","name":"A","image":"nginx:1.27","port":80,"max_replicas":65}]}`)); err == nil || !strings.Contains(err.Error(), "max_replicas") {
		t.Fatalf("ParseTemplates with max_replicas 65: %v", err)
	}
	// Importing a template whose only change is its scaling updates it.
	tpl.TargetConcurrency = 30
	res, err := s.ImportTemplates(ctx, "test", []Template{*tpl})
	if err != nil || len(res.Updated) != 1 {
		t.Fatalf("import with a new target: %+v, %v", res, err)
	}
	if r := route(); r.TargetConcurrency != 30 {
		t.Fatalf("after import: target %d", r.TargetConcurrency)
	}
}

// TestScaleEvents: a site's scale events, newest first, bounded per site
// to MaxScaleEvents by the insert itself; other sites' are not touched,
// and a removed site's go with it.
func TestScaleEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	c, tpl, site := fixture(t, s)
	other := &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "other"}
	if err := s.CreateSite(ctx, "test", other); err != nil {
		t.Fatal(err)
	}

	if list, err := s.SiteScaleEvents(ctx, site.ID, 10); err != nil || len(list) != 0 {
		t.Fatalf("no events yet: %+v, %v", list, err)
	}
	before := time.Now().Add(-time.Minute)
	now := &ScaleEvent{SiteID: site.ID, Node: "node-a", FromReplicas: 1, ToReplicas: 2, Reason: "in-flight 23.4 > target 10 x 1 replica for 6s", InFlight: 23.4}
	if err := s.RecordScaleEvent(ctx, now); err != nil {
		t.Fatal(err)
	}
	if now.ID == 0 || now.At.Before(before) {
		t.Fatalf("recorded at now: id %d at %v", now.ID, now.At)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range MaxScaleEvents + 4 {
		e := &ScaleEvent{SiteID: site.ID, At: t0.Add(time.Duration(i) * time.Second), Node: "node-b", FromReplicas: 2, ToReplicas: 1, Reason: "down", InFlight: float64(i)}
		if err := s.RecordScaleEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordScaleEvent(ctx, &ScaleEvent{SiteID: other.ID, At: t0, FromReplicas: 1, ToReplicas: 2}); err != nil {
		t.Fatal(err)
	}

	list, err := s.SiteScaleEvents(ctx, site.ID, 3)
	if err != nil || len(list) != 3 {
		t.Fatalf("latest 3: %+v, %v", list, err)
	}
	if list[0].ID != now.ID || list[0].Node != "node-a" || list[0].InFlight != 23.4 || list[0].Reason != now.Reason ||
		list[0].FromReplicas != 1 || list[0].ToReplicas != 2 || list[0].SiteID != site.ID {
		t.Fatalf("newest: %+v, want %+v", list[0], now)
	}
	if !list[1].At.Equal(t0.Add((MaxScaleEvents+3)*time.Second)) || !list[2].At.Equal(t0.Add((MaxScaleEvents+2)*time.Second)) {
		t.Fatalf("next: %v, %v", list[1].At, list[2].At)
	}
	all, err := s.SiteScaleEvents(ctx, site.ID, 1000)
	if err != nil || len(all) != MaxScaleEvents {
		t.Fatalf("kept %d events, %v; want %d", len(all), err, MaxScaleEvents)
	}
	// The oldest five went (MaxScaleEvents+5 were written).
	if oldest := all[len(all)-1]; !oldest.At.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("oldest kept at %v, want %v", oldest.At, t0.Add(5*time.Second))
	}
	if list, err := s.SiteScaleEvents(ctx, other.ID, 10); err != nil || len(list) != 1 {
		t.Fatalf("the other site's: %+v, %v", list, err)
	}

	wantInvalid(t, s.RecordScaleEvent(ctx, &ScaleEvent{SiteID: "x", ToReplicas: 1}), "site_id")
	wantInvalid(t, s.RecordScaleEvent(ctx, &ScaleEvent{SiteID: site.ID, FromReplicas: -1}), "from_replicas")
	wantInvalid(t, s.RecordScaleEvent(ctx, &ScaleEvent{SiteID: site.ID, ToReplicas: MaxReplicas + 1}), "to_replicas")
	wantInvalid(t, s.RecordScaleEvent(ctx, &ScaleEvent{SiteID: site.ID, InFlight: math.NaN()}), "in_flight")
	wantInvalid(t, s.RecordScaleEvent(ctx, &ScaleEvent{SiteID: site.ID, Reason: strings.Repeat("x", MaxScaleReasonLen+1)}), "reason")
	if err := s.RecordScaleEvent(ctx, &ScaleEvent{SiteID: "00000000-0000-0000-0000-000000000000", ToReplicas: 1}); err == nil {
		t.Fatal("an event of no site was recorded")
	}

	if err := s.DeleteSite(ctx, "test", site.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM scale_events WHERE site_id = $1`, site.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("events of a removed site: %d, %v", n, err)
	}
}
