package admin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The scanner finds what encoding/json lets through, at any depth, and
// names the field by its path; text that is text passes.
func TestCheckJSONText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body   string
		status int
		field  string
	}{
		{`{"name":"a\u0000b"}`, 422, "name"},
		{`{"name":"a` + "\xff" + `"}`, 422, "name"},
		{`{"name":"\ud800"}`, 422, "name"},
		{`{"name":"\udc00\ud800"}`, 422, "name"},
		{`{"name":"\ud83dx"}`, 422, "name"},
		{`{"name":"\ud83d\u0041"}`, 422, "name"},
		{`{"env":{"FOO":"\u0000"}}`, 422, "env.FOO"},
		{`{"env":{"FOO":"ok","BAR":"` + "\xc3\x28" + `"}}`, 422, "env.BAR"},
		{`{"env":{"F\u0000O":"x"}}`, 422, "env.F\uFFFDO"},
		{`{"env":{"` + "\xff" + `":"x"}}`, 422, "env.\uFFFD"},
		{`{"cap_add":["A","B\u0000"]}`, 422, "cap_add[1]"},
		{`{"a":{"b":[{"c":"\u0000"}]}}`, 422, "a.b[0].c"},
		{`{"name":"a","name":"b"}`, 400, "name"},
		{`{"name":"a","Name":"b"}`, 400, "Name"},
		{`{"env":{"A":"1","A":"2"}}`, 400, "env.A"},
		{`{"a":[{"x":1,"x":2}]}`, 400, "a[0].x"},
	}
	for _, c := range cases {
		var e *Error
		if err := checkJSONText([]byte(c.body)); !errors.As(err, &e) || e.Status != c.status || e.Field != c.field {
			t.Errorf("%q: %v, want %d naming %q", c.body, err, c.status, c.field)
		}
	}
	for _, ok := range []string{
		`{"name":"\ud83d\ude00 é ü \u00e9 \" \\ \/ \n \u2028"}`,
		`{"env":{"A":"1","a":"2"},"x":[1,2.5e3,true,false,null,{}],"y":{}}`,
		`{"name":"\\u0000 is only text here"}`,
		` { "name" : "spaced" , "n" : -1 } `,
	} {
		if err := checkJSONText([]byte(ok)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

// Through the API, text that is not text and duplicate members are
// refused before anything is stored; text up to a field's limit in
// characters is stored as sent.
func TestBodyTextThroughAPI(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})
	var c tenants.Customer
	name := strings.Repeat("é", tenants.MaxNameLen-1) + "😀"
	if status, _, raw := ta.do("POST", "/api/v1/customers", `{"email":"t@example.org","name":"`+strings.Repeat("é", tenants.MaxNameLen-1)+`\ud83d\ude00"}`, &c); status != 201 || c.Name != name {
		t.Fatalf("a %d-character name: %d %s", tenants.MaxNameLen, status, raw)
	}
	ta.wantError("POST", "/api/v1/customers", `{"email":"u@example.org","name":"`+strings.Repeat("é", tenants.MaxNameLen+1)+`"}`, 422, CodeInvalid, "name")
	ta.wantError("POST", "/api/v1/customers", `{"email":"u@example.org","name":"N\u0000"}`, 422, CodeInvalid, "name")
	ta.wantError("POST", "/api/v1/customers", `{"email":"u@example.org","name":"`+"\xff"+`"}`, 422, CodeInvalid, "name")
	ta.wantError("POST", "/api/v1/customers", `{"email":"u@example.org","name":"\udfff"}`, 422, CodeInvalid, "name")
	ta.wantError("POST", "/api/v1/customers", `{"email":"u@example.org","name":"U","email":"v@example.org"}`, 400, CodeDuplicateKey, "email")
	ta.wantError("PATCH", "/api/v1/customers/"+c.ID, `{"name":"U","NAME":"V"}`, 400, CodeDuplicateKey, "NAME")
	ta.wantError("PATCH", "/api/v1/customers/"+c.ID, `{"stripe_customer_id":"cus_a-b"}`, 422, CodeInvalid, "stripe_customer_id")
	_, tpl, _ := ta.fixture()
	ta.wantError("PATCH", "/api/v1/templates/"+tpl.ID, `{"env":{"OK":"1","BAD":"\u0000"}}`, 422, CodeInvalid, "env.BAD")
	ta.wantError("PATCH", "/api/v1/templates/"+tpl.ID, `{"env":{"A":"1","A":"2"}}`, 400, CodeDuplicateKey, "env.A")
	ta.wantError("PATCH", "/api/v1/templates/"+tpl.ID, `{"env":{"A":"`+strings.Repeat("x", tenants.MaxEnvValueLen+1)+`"}}`, 422, CodeInvalid, "env.A")
	ta.wantError("POST", "/api/v1/plans", `{"slug":"p","name":"P","max_sites":2147483648}`, 422, CodeInvalid, "max_sites")
	ta.wantError("POST", "/api/v1/plans", `{"slug":"p","name":"P","memory_bytes":9223372036854775808}`, 400, CodeInvalidType, "memory_bytes")
	ta.wantError("POST", "/api/v1/plans", `{"slug":"p","name":"P","stripe_price_id":"prod_1"}`, 422, CodeInvalid, "stripe_price_id")
	ta.wantError("POST", "/api/v1/sites/00000000-0000-0000-0000-000000000000/start", `{"a":"\u0000"}`, 404, CodeNotFound, "")
	if got, err := ta.store.GetTemplate(context.Background(), tpl.ID); err != nil || got.Version != 1 {
		t.Fatalf("template after refused patches: %+v %v", got, err)
	}
	// The customer created first and the fixture's; no plan.
	if counts, err := ta.store.Count(context.Background()); err != nil || counts.Customers != 2 || counts.Plans != 0 {
		t.Fatalf("rows after refused creates: %+v %v", counts, err)
	}
}

// Query strings are parsed strictly: what Go's parser drops is a 400, a
// parameter the route does not take or given twice a 400, a value that
// is not text, not a known value or not a uuid a 422, each naming the
// parameter; a filtered listing never silently lists everything.
func TestQueryThroughAPI(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})
	ctx := context.Background()
	c, tpl, sites := ta.fixture("one", "two")
	for _, s := range sites {
		if err := ta.store.CreateDomain(ctx, "test", &tenants.Domain{SiteID: s.ID, Hostname: s.Subdomain + ".shop.test"}); err != nil {
			t.Fatal(err)
		}
	}
	one := sites[0].ID
	var l list[tenants.Domain]
	if status, _, raw := ta.do("GET", "/api/v1/domains?site_id="+one, nil, &l); status != 200 || len(l.Items) != 1 {
		t.Fatalf("domains of one site: %d %s", status, raw)
	}
	for _, c := range []struct {
		path, code, field string
		status            int
	}{
		{"/api/v1/domains?site_id=" + one + ";", CodeMalformedQuery, "site_id", 400},
		{"/api/v1/domains?limit=5;site_id=" + one, CodeMalformedQuery, "limit", 400},
		{"/api/v1/domains?site_id=%zz", CodeMalformedQuery, "site_id", 400},
		{"/api/v1/domains?site%2=x", CodeMalformedQuery, "site%2", 400},
		{"/api/v1/domains?site=" + one, CodeUnknownParameter, "site", 400},
		{"/api/v1/domains?site_id=" + one + "&site_id=" + sites[1].ID, CodeDuplicateKey, "site_id", 400},
		{"/api/v1/domains?site_id=nope", CodeInvalid, "site_id", 422},
		{"/api/v1/sites/" + one + "/domains?site_id=" + one, CodeUnknownParameter, "site_id", 400},
		{"/api/v1/customers?status=bogus", CodeInvalid, "status", 422},
		{"/api/v1/customers?status=%00", CodeInvalid, "status", 422},
		{"/api/v1/customers?status=%ff", CodeInvalid, "status", 422},
		{"/api/v1/customers?st%00atus=x", CodeUnknownParameter, "st\uFFFDatus", 400},
		{"/api/v1/customers?after=zzz", CodeInvalid, "after", 422},
		{"/api/v1/customers?limit=-1", CodeInvalid, "limit", 422},
		{"/api/v1/customers?limit=99999999999999999999", CodeInvalid, "limit", 422},
		{"/api/v1/sites?customer=" + c.ID, CodeUnknownParameter, "customer", 400},
		{"/api/v1/sites?customer_id=1", CodeInvalid, "customer_id", 422},
		{"/api/v1/sites?template_id=" + tpl.ID + "x", CodeInvalid, "template_id", 422},
		{"/api/v1/sites?status=paused", CodeInvalid, "status", 422},
		{"/api/v1/plans?status=active", CodeUnknownParameter, "status", 400},
		{"/api/v1/audit?entity=sites", CodeInvalid, "entity", 422},
		{"/api/v1/audit?entity_id=1", CodeInvalid, "entity_id", 422},
		{"/api/v1/audit?before=99999999999999999999", CodeInvalid, "before", 422},
		{"/api/v1/audit?since=yesterday", CodeInvalid, "since", 422},
		{"/api/v1/audit?until=2026-01-02", CodeInvalid, "until", 422},
		{"/api/v1/audit?actor_exact=maybe", CodeInvalid, "actor_exact", 422},
		{"/api/v1/audit?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", CodeInvalid, "until", 422},
		{"/api/v1/sites/" + one + "/logs?tail=-5", CodeInvalid, "tail", 422},
		{"/api/v1/sites/" + one + "/logs?lines=5", CodeUnknownParameter, "lines", 400},
		{"/api/v1/sites/" + one + "?force=true", CodeUnknownParameter, "force", 400},
	} {
		ta.wantError("GET", c.path, nil, c.status, c.code, c.field)
	}
	// A DELETE with a typo'd parameter deletes nothing.
	ta.wantError("DELETE", "/api/v1/sites/"+one+"?purge=true;", nil, 400, CodeMalformedQuery, "purge")
	ta.wantError("DELETE", "/api/v1/customers/"+c.ID+"?cascade=true&purge=1&forcee=1", nil, 400, CodeUnknownParameter, "forcee")
	if n, err := ta.store.Count(ctx); err != nil || n.Sites != 2 || n.Customers != 1 {
		t.Fatalf("rows after refused deletes: %+v %v", n, err)
	}
}
