package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// testAPI is the API on a fresh schema of the test database, over a real
// HTTP server, with a write and a read key.
type testAPI struct {
	t     *testing.T
	url   string
	store *tenants.Store
	write string
	read  string
	api   *API
}

// newTestAPI is the API over an admin service of svc's settings (its
// store made here); api, when given, sets the API's own.
func newTestAPI(t *testing.T, svc manage.Config, api ...func(*Config)) *testAPI {
	t.Helper()
	schema := pgtest.Schema(t)
	return newTestAPIOn(t, svc, schema, pgtest.Pool(t, schema), api...)
}

// testStoreOptions are the settings of the tests' stores.
var testStoreOptions = tenants.Options{BaseDomain: "example.com", Reserved: []string{"admin", "www"}}

// newTestAPIOn is newTestAPI on pool, connected to the fresh schema.
func newTestAPIOn(t *testing.T, svc manage.Config, schema string, pool *pgxpool.Pool, api ...func(*Config)) *testAPI {
	t.Helper()
	ctx := context.Background()
	if _, err := tenants.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	store := tenants.NewStore(pool, testStoreOptions)
	svc.Store = store
	cfg := Config{Service: manage.New(svc), Logger: svc.Logger}
	for _, set := range api {
		set(&cfg)
	}
	a := New(cfg)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	ta := &testAPI{t: t, url: srv.URL, store: store, api: a}
	var err error
	if ta.write, _, err = store.CreateAPIKey(ctx, "test", "writer", tenants.ScopeWrite); err != nil {
		t.Fatal(err)
	}
	if ta.read, _, err = store.CreateAPIKey(ctx, "test", "reader", tenants.ScopeRead); err != nil {
		t.Fatal(err)
	}
	return ta
}

// do sends a request with the write key; body may be a string (sent as
// is), nil, or any value (sent as JSON). out, if not nil, receives the
// decoded response.
func (ta *testAPI) do(method, path string, body any, out any) (int, http.Header, []byte) {
	ta.t.Helper()
	return ta.doAs(ta.write, method, path, body, out)
}

func (ta *testAPI) doAs(token, method, path string, body any, out any) (int, http.Header, []byte) {
	ta.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ta.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ta.url+path, rd)
	if err != nil {
		ta.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			ta.t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, resp.Header, data
}

type errorBody struct {
	Error Error `json:"error"`
}

// wantError asserts an error response's status, code and field.
func (ta *testAPI) wantError(method, path string, body any, status int, code, field string) {
	ta.t.Helper()
	var e errorBody
	got, _, raw := ta.do(method, path, body, &e)
	if got != status || e.Error.Code != code || e.Error.Field != field {
		ta.t.Errorf("%s %s: got %d %s field %q (%s), want %d %s field %q", method, path, got, e.Error.Code, e.Error.Field, raw, status, code, field)
	}
}

// fixture makes a customer and a template, and a site of theirs at each
// subdomain.
func (ta *testAPI) fixture(subdomains ...string) (*tenants.Customer, *tenants.Template, []*tenants.Site) {
	ta.t.Helper()
	ctx := context.Background()
	c := &tenants.Customer{Email: "fixture@example.org", Name: "Fixture"}
	if err := ta.store.CreateCustomer(ctx, "test", c); err != nil {
		ta.t.Fatal(err)
	}
	tpl := &tenants.Template{Slug: "t", Name: "T", Image: "nginx:1.27", Port: 80}
	if err := ta.store.CreateTemplate(ctx, "test", tpl); err != nil {
		ta.t.Fatal(err)
	}
	var sites []*tenants.Site
	for _, sub := range subdomains {
		s := &tenants.Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: sub}
		if err := ta.store.CreateSite(ctx, "test", s); err != nil {
			ta.t.Fatal(err)
		}
		sites = append(sites, s)
	}
	return c, tpl, sites
}
