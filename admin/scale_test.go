package admin

import (
	"context"
	"net/http"
	"testing"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// A template's max_replicas and target_concurrency and a plan's cap
// through the API: defaults when left out, a value out of range (0
// included) 422 naming the field, a plan's cap set and taken off with
// null.
func TestScaleSettingsAPI(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})
	var tpl tenants.Template
	if status, _, raw := ta.do("POST", "/api/v1/templates", map[string]any{"slug": "blog", "name": "Blog", "image": "nginx:1.27", "port": 80}, &tpl); status != 201 || tpl.MaxReplicas != 1 || tpl.TargetConcurrency != 10 {
		t.Fatalf("create template without scaling: %d %s", status, raw)
	}
	if status, _, raw := ta.do("POST", "/api/v1/templates", map[string]any{"slug": "app", "name": "App", "image": "nginx:1.27", "port": 80, "max_replicas": 4, "target_concurrency": 25}, &tpl); status != 201 || tpl.MaxReplicas != 4 || tpl.TargetConcurrency != 25 {
		t.Fatalf("create template max 4, target 25: %d %s", status, raw)
	}
	ta.wantError("POST", "/api/v1/templates", map[string]any{"slug": "big", "name": "Big", "image": "nginx:1.27", "port": 80, "max_replicas": 65}, 422, CodeInvalid, "max_replicas")
	ta.wantError("POST", "/api/v1/templates", map[string]any{"slug": "big", "name": "Big", "image": "nginx:1.27", "port": 80, "target_concurrency": 10001}, 422, CodeInvalid, "target_concurrency")
	ta.wantError("PATCH", "/api/v1/templates/app", `{"max_replicas":0}`, 422, CodeInvalid, "max_replicas")
	ta.wantError("PATCH", "/api/v1/templates/app", `{"target_concurrency":-1}`, 422, CodeInvalid, "target_concurrency")
	if status, _, raw := ta.do("PATCH", "/api/v1/templates/app", `{"max_replicas":2}`, &tpl); status != 200 || tpl.MaxReplicas != 2 || tpl.TargetConcurrency != 25 {
		t.Fatalf("patch max 2: %d %s", status, raw)
	}
	if status, _, raw := ta.do("PATCH", "/api/v1/templates/app", `{"max_replicas":"many"}`, nil); status != 400 && status != 422 {
		t.Fatalf("patch max_replicas with a string: %d %s", status, raw)
	}

	var plan tenants.Plan
	if status, _, raw := ta.do("POST", "/api/v1/plans", map[string]any{"slug": "small", "name": "Small"}, &plan); status != 201 || plan.MaxReplicas != nil {
		t.Fatalf("plan without a cap: %d %s", status, raw)
	}
	if status, _, raw := ta.do("POST", "/api/v1/plans", map[string]any{"slug": "duo", "name": "Duo", "max_replicas": 2}, &plan); status != 201 || plan.MaxReplicas == nil || *plan.MaxReplicas != 2 {
		t.Fatalf("plan capped at 2: %d %s", status, raw)
	}
	ta.wantError("POST", "/api/v1/plans", map[string]any{"slug": "huge", "name": "Huge", "max_replicas": 65}, 422, CodeInvalid, "max_replicas")
	ta.wantError("PATCH", "/api/v1/plans/duo", `{"max_replicas":0}`, 422, CodeInvalid, "max_replicas")
	if status, _, raw := ta.do("PATCH", "/api/v1/plans/duo", `{"max_replicas":null}`, &plan); status != 200 || plan.MaxReplicas != nil {
		t.Fatalf("plan cap null: %d %s", status, raw)
	}
	if status, _, raw := ta.do("PATCH", "/api/v1/plans/duo", `{"max_replicas":3}`, &plan); status != 200 || plan.MaxReplicas == nil || *plan.MaxReplicas != 3 {
		t.Fatalf("plan cap 3: %d %s", status, raw)
	}
	if status, _, raw := ta.do("GET", "/api/v1/plans/duo", nil, &plan); status != 200 || plan.MaxReplicas == nil || *plan.MaxReplicas != 3 {
		t.Fatalf("get plan: %d %s", status, raw)
	}
}

// The scale-events route answers the site's scaling decisions, newest
// first; it takes the site's subdomain, bounds limit naming it, and a
// site it does not know is 404.
func TestSiteScaleEventsRoute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newTestAPI(t, manage.Config{})
	_, _, sites := ta.fixture("busy")
	site := sites[0]
	for i := 1; i <= 3; i++ {
		e := &tenants.ScaleEvent{SiteID: site.ID, Node: "n1", FromReplicas: i, ToReplicas: i + 1, Reason: "in-flight 40.0 > target 10 x 1 replica for 6s", InFlight: 40}
		if err := ta.store.RecordScaleEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var list scaleEventList
	if status, _, raw := ta.do("GET", "/api/v1/sites/busy/scale-events?limit=2", nil, &list); status != 200 || len(list.Items) != 2 ||
		list.Items[0].ToReplicas != 4 || list.Items[1].ToReplicas != 3 || list.Items[0].Node != "n1" || list.Items[0].InFlight != 40 ||
		list.Items[0].Reason == "" || list.Items[0].SiteID != site.ID {
		t.Fatalf("two newest: %d %s", status, raw)
	}
	if status, _, raw := ta.do("GET", "/api/v1/sites/"+site.ID+"/scale-events", nil, &list); status != 200 || len(list.Items) != 3 {
		t.Fatalf("all: %d %s", status, raw)
	}
	var e errorBody
	for _, q := range []string{"limit=0", "limit=201", "limit=many"} {
		if status, _, raw := ta.do("GET", "/api/v1/sites/busy/scale-events?"+q, nil, &e); status != 422 || e.Error.Field != "limit" {
			t.Errorf("%s: %d %s, want 422 naming limit", q, status, raw)
		}
	}
	if status, _, _ := ta.do("GET", "/api/v1/sites/nosuch/scale-events", nil, &e); status != http.StatusNotFound {
		t.Errorf("scale events of no site: %d", status)
	}
}
