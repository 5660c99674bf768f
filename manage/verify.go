package manage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// TXTPrefix is the label a verification TXT record lives under: the
// domain www.acme-shop.com is verified by a TXT record at
// _caddy-multitenant.www.acme-shop.com whose value is the domain's
// verify_token.
const TXTPrefix = "_caddy-multitenant."

// Verifier decides whether a custom domain points at the platform. A
// domain is verified when any of these holds:
//
//   - a TXT record at TXTPrefix+hostname equals the domain's verify token;
//   - the hostname is a CNAME of CNAMETarget;
//   - the hostname resolves (A/AAAA) to at least one address, and every
//     address is one of PublicIPs (a hostname that also points elsewhere
//     would get some of its traffic, and its certificate challenges, at
//     another server).
type Verifier struct {
	// PublicIPs are the platform's public addresses.
	PublicIPs []netip.Addr
	// CNAMETarget is the hostname customers CNAME their domains to.
	CNAMETarget string
	// Resolver looks names up; nil means the system resolver.
	Resolver *net.Resolver
	// Timeout bounds one verification. Default: 10s.
	Timeout time.Duration
}

// NewResolver returns a resolver that asks the DNS server at addr
// (host:port) directly, bypassing the system's configuration.
func NewResolver(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

func (v *Verifier) resolver() *net.Resolver {
	if v.Resolver != nil {
		return v.Resolver
	}
	return net.DefaultResolver
}

// Verify looks the hostname up and returns how it is verified ("txt",
// "cname" or "address"), or "" and why not.
func (v *Verifier) Verify(ctx context.Context, hostname, token string) (method, reason string) {
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := v.resolver()
	var reasons []string

	txts, err := res.LookupTXT(ctx, TXTPrefix+hostname+".")
	if err == nil {
		for _, t := range txts {
			if token != "" && strings.TrimSpace(t) == token {
				return "txt", ""
			}
		}
		reasons = append(reasons, fmt.Sprintf("TXT %s%s does not hold the verify token", TXTPrefix, hostname))
	} else {
		reasons = append(reasons, "TXT "+TXTPrefix+hostname+": "+lookupError(err))
	}

	if target := normalizeName(v.CNAMETarget); target != "" {
		cname, err := res.LookupCNAME(ctx, hostname+".")
		switch {
		case err == nil && normalizeName(cname) == target:
			return "cname", ""
		case err == nil && normalizeName(cname) != normalizeName(hostname):
			reasons = append(reasons, fmt.Sprintf("CNAME points to %s, not %s", normalizeName(cname), target))
		case err != nil:
			reasons = append(reasons, "CNAME: "+lookupError(err))
		}
	}

	if len(v.PublicIPs) > 0 {
		addrs, err := res.LookupNetIP(ctx, "ip", hostname+".")
		if err != nil {
			reasons = append(reasons, "A/AAAA: "+lookupError(err))
		} else {
			var foreign []string
			for _, a := range addrs {
				if !v.ours(a.Unmap()) {
					foreign = append(foreign, a.Unmap().String())
				}
			}
			if len(addrs) > 0 && len(foreign) == 0 {
				return "address", ""
			}
			reasons = append(reasons, "resolves to addresses that are not the platform's: "+strings.Join(foreign, ", "))
		}
	}
	return "", strings.Join(reasons, "; ")
}

func (v *Verifier) ours(a netip.Addr) bool {
	for _, ip := range v.PublicIPs {
		if ip.Unmap() == a {
			return true
		}
	}
	return false
}

// Expect describes the DNS records that would verify hostname.
func (v *Verifier) Expect(hostname, token string) []string {
	out := []string{fmt.Sprintf("TXT %s%s %q", TXTPrefix, hostname, token)}
	if t := normalizeName(v.CNAMETarget); t != "" {
		out = append(out, fmt.Sprintf("CNAME %s %s", hostname, t))
	}
	if len(v.PublicIPs) > 0 {
		ips := make([]string, len(v.PublicIPs))
		for i, ip := range v.PublicIPs {
			ips[i] = ip.String()
		}
		out = append(out, fmt.Sprintf("A/AAAA %s only %s", hostname, strings.Join(ips, ", ")))
	}
	return out
}

func normalizeName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// lookupError says why a lookup failed in terms of the customer's DNS; the
// resolver's own error text names the server's resolver address.
func lookupError(err error) string {
	var dnsErr *net.DNSError
	switch {
	case !errors.As(err, &dnsErr):
		return "lookup failed"
	case dnsErr.IsNotFound:
		return "no such record"
	case dnsErr.IsTimeout:
		return "lookup timed out"
	case dnsErr.IsTemporary:
		return "lookup failed for now; try again"
	}
	return "lookup failed"
}
