package admin

import (
	"context"
	"net/netip"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/dnstest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Verification against a real DNS server: TXT token, CNAME to the
// platform, addresses all the platform's; anything else is refused with a
// reason.
func TestVerifier(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	v := &Verifier{
		PublicIPs:   []netip.Addr{netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("2001:db8::10")},
		CNAMETarget: "edge.platform.test",
		Resolver:    NewResolver(dns.Addr),
	}
	dns.SetTXT("_caddy-multitenant.txt.customer.test", "other", "tok123")
	dns.SetTXT("_caddy-multitenant.wrongtxt.customer.test", "nope")
	dns.SetAddrs("edge.platform.test", "203.0.113.10")
	dns.SetCNAME("cname.customer.test", "edge.platform.test")
	dns.SetCNAME("elsewhere.customer.test", "other.host.test")
	dns.SetAddrs("other.host.test", "198.51.100.7")
	dns.SetAddrs("a.customer.test", "203.0.113.10", "2001:db8::10")
	dns.SetAddrs("mixed.customer.test", "203.0.113.10", "198.51.100.7")

	cases := []struct {
		host, want string
	}{
		{"txt.customer.test", "txt"},
		{"wrongtxt.customer.test", ""},
		{"cname.customer.test", "cname"},
		{"elsewhere.customer.test", ""},
		{"a.customer.test", "address"},
		{"mixed.customer.test", ""},
		{"missing.customer.test", ""},
	}
	for _, c := range cases {
		got, reason := v.Verify(context.Background(), c.host, "tok123")
		if got != c.want || (got == "" && reason == "") {
			t.Errorf("%s: verified by %q (%s), want %q", c.host, got, reason, c.want)
		}
	}
}

// POST /domains/{id}/verify marks a domain verified once its DNS passes,
// and reports why not before.
func TestVerifyDomainEndpoint(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	ta := newTestAPI(t, Config{Verifier: &Verifier{Resolver: NewResolver(dns.Addr)}})
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
