package manage

import (
	"context"
	"net/netip"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/dnstest"
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
