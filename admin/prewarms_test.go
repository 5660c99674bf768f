package admin

import (
	"context"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The pre-warms route answers the site's pre-warms, newest first, with
// the first visitor where one came; it takes the site's subdomain,
// bounds limit naming it, and a site it does not know is 404.
func TestSitePrewarmsRoute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newTestAPI(t, manage.Config{})
	_, _, sites := ta.fixture("early")
	site := sites[0]
	slot := time.Now().UTC().Truncate(time.Hour)
	var ids []int64
	for d := 3; d >= 1; d-- {
		s := slot.Add(-time.Duration(d) * 24 * time.Hour)
		id, _, err := ta.store.RecordPrewarm(ctx, site.ID, s, 0.75, s.Add(-2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	visitor := slot.Add(-24*time.Hour + time.Minute)
	if err := ta.store.SetPrewarmFirstRequests(ctx, []tenants.PrewarmFirstRequest{{EventID: ids[2], At: visitor}}); err != nil {
		t.Fatal(err)
	}
	var list prewarmList
	if status, _, raw := ta.do("GET", "/api/v1/sites/early/prewarms?limit=2", nil, &list); status != 200 || len(list.Items) != 2 ||
		list.Items[0].ID != ids[2] || list.Items[0].FirstRequestAt == nil || !list.Items[0].FirstRequestAt.Equal(visitor) ||
		list.Items[1].FirstRequestAt != nil || list.Items[1].Probability != 0.75 {
		t.Fatalf("two newest: %d %s", status, raw)
	}
	if status, _, raw := ta.do("GET", "/api/v1/sites/"+site.ID+"/prewarms", nil, &list); status != 200 || len(list.Items) != 3 {
		t.Fatalf("all: %d %s", status, raw)
	}
	var e errorBody
	for _, q := range []string{"limit=0", "limit=501", "limit=many"} {
		if status, _, raw := ta.do("GET", "/api/v1/sites/early/prewarms?"+q, nil, &e); status != 422 || e.Error.Field != "limit" {
			t.Errorf("%s: %d %s, want 422 naming limit", q, status, raw)
		}
	}
	if status, _, _ := ta.do("GET", "/api/v1/sites/nosuch/prewarms", nil, &e); status != 404 {
		t.Errorf("pre-warms of no site: %d", status)
	}
}
