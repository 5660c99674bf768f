package admin

import (
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// The figures routes take window and step (days too), refuse what the
// service refuses with 422 naming the parameter, and answer every series.
func TestFiguresParams(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})
	var f PlatformFigures
	if status, _, raw := ta.do("GET", "/api/v1/figures?window=7d&step=6h", nil, &f); status != 200 || f.Step != 6*time.Hour ||
		len(f.ColdStarts.Points) != 28 || f.Running.Points == nil || f.Failures.Unit != "count" {
		t.Fatalf("7d in steps of 6h: %d %s", status, raw)
	}
	if status, _, raw := ta.do("GET", "/api/v1/figures", nil, &f); status != 200 || f.Step != 15*time.Minute {
		t.Fatalf("the defaults: %d %s", status, raw)
	}
	for _, c := range []struct{ query, field string }{
		{"window=yesterday", "window"},
		{"window=-1h", "window"},
		{"window=0d", "window"},
		{"window=31d", "window"},
		{"step=30s", "step"},
		{"window=30d&step=1m", "step"},
	} {
		var e errorBody
		status, _, raw := ta.do("GET", "/api/v1/figures?"+c.query, nil, &e)
		if status != 422 || e.Error.Field != c.field {
			t.Errorf("%s: %d %s, want 422 naming %s", c.query, status, raw, c.field)
		}
	}
	var e errorBody
	if status, _, _ := ta.do("GET", "/api/v1/figures?windw=1h", nil, &e); status != 400 || e.Error.Code != CodeUnknownParameter {
		t.Errorf("a mistyped parameter: %d %+v", status, e)
	}
	if status, _, _ := ta.do("GET", "/api/v1/sites/nosuch/figures", nil, &e); status != 404 {
		t.Errorf("figures of no site: %d %+v", status, e)
	}
}
