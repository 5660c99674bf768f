package admin

import (
	"context"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/dnstest"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// POST /domains/{id}/verify marks a domain verified once its DNS passes,
// and reports why not before.
func TestVerifyDomainEndpoint(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	ta := newTestAPI(t, manage.Config{Verifier: &manage.Verifier{Resolver: manage.NewResolver(dns.Addr)}})
	c := &tenants.Customer{Email: "v@example.org", Name: "V"}
	tpl := &tenants.Template{Slug: "s", Name: "S", Image: "nginx:1.27", Port: 80}
	ctx := context.Background()
	if err := ta.store.CreateCustomer(ctx, "t", c); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.CreateTemplate(ctx, "t", tpl); err != nil {
		t.Fatal(err)
	}
	site := &tenants.Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "v"}
	if err := ta.store.CreateSite(ctx, "t", site); err != nil {
		t.Fatal(err)
	}
	var d tenants.Domain
	ta.do("POST", "/api/v1/sites/"+site.ID+"/domains", `{"hostname":"www.v-shop.test"}`, &d)

	var res VerifyResult
	status, _, raw := ta.do("POST", "/api/v1/domains/"+d.ID+"/verify", nil, &res)
	if status != 200 || res.Verified || res.Reason == "" || len(res.Expect) == 0 {
		t.Fatalf("before DNS: %d %s", status, raw)
	}
	dns.SetTXT("_caddy-multitenant.www.v-shop.test", d.VerifyToken)
	status, _, raw = ta.do("POST", "/api/v1/domains/"+d.ID+"/verify", nil, &res)
	if status != 200 || !res.Verified || res.Method != "txt" || !res.Domain.Verified {
		t.Fatalf("after DNS: %d %s", status, raw)
	}
	got, err := ta.store.GetDomain(ctx, d.ID)
	if err != nil || !got.Verified {
		t.Fatalf("stored domain: %+v %v", got, err)
	}
}
