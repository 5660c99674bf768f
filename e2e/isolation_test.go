package e2e

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/agistaffers/caddy-multitenant/internal/outside"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// siteOf creates a site of customer c at subdomain and waits until Caddy
// knows it.
func (p *testPlatform) siteOf(c *tenants.Customer, tpl *tenants.Template, subdomain string) *tenants.Site {
	p.t.Helper()
	s := &tenants.Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: subdomain, Env: map[string]string{"SITE_NAME": subdomain}}
	if err := p.store.CreateSite(context.Background(), "e2e", s); err != nil {
		p.t.Fatal(err)
	}
	eventually(p.t, 5*time.Second, "site "+subdomain+" known to caddy", func() bool {
		st, _, _ := p.get(host(subdomain), "/.well-known/caddy-multitenant/ready", nil)
		return st != http.StatusNotFound
	})
	return s
}

// inspectSite starts the site through Caddy and inspects its container.
func (p *testPlatform) inspectSite(s *tenants.Site) container.InspectResponse {
	p.t.Helper()
	if st, body, _ := p.get(host(s.Subdomain), "/", nil); st != http.StatusOK {
		p.t.Fatalf("GET %s: %d %s", s.Subdomain, st, body)
	}
	list := p.containers(s.ID)
	if len(list) != 1 {
		p.t.Fatalf("site %s has %d containers", s.Subdomain, len(list))
	}
	c, err := p.docker.ContainerInspect(context.Background(), list[0].ID)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// onlyNetwork returns the one network c is on, with its address there.
func onlyNetwork(t *testing.T, c container.InspectResponse) (name, ip string) {
	t.Helper()
	if len(c.NetworkSettings.Networks) != 1 {
		t.Fatalf("container %s is on %d networks, want 1", c.Name, len(c.NetworkSettings.Networks))
	}
	for n, ep := range c.NetworkSettings.Networks {
		return n, ep.IPAddress
	}
	return "", ""
}

// From inside customer B's container, through Caddy, the test site's
// probes try what an attacker would: customer A's container (address,
// name, published port), the host's own services on B's bridge gateway
// (Caddy's admin API, PostgreSQL), the Docker socket. Every attempt fails;
// B's second site answers; the outside answers. With the firewall rule
// of the README's security section, the host's other services on the
// gateway are fenced off too while the public path stays open.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	ctx := context.Background()
	custB := &tenants.Customer{Email: "b@example.org", Name: "B"}
	if err := p.store.CreateCustomer(ctx, "e2e", custB); err != nil {
		t.Fatal(err)
	}
	a := p.siteOf(p.customer, p.template, "iso-a")
	b1 := p.siteOf(custB, p.template, "iso-b1")
	b2 := p.siteOf(custB, p.template, "iso-b2")
	cA, cB1, cB2 := p.inspectSite(a), p.inspectSite(b1), p.inspectSite(b2)

	netA, ipA := onlyNetwork(t, cA)
	netB, _ := onlyNetwork(t, cB1)
	if netB2, _ := onlyNetwork(t, cB2); netA == netB || netB2 != netB {
		t.Fatalf("networks: A on %s, B's sites on %s and %s", netA, netB, netB2)
	}
	_, ipB2 := onlyNetwork(t, cB2)
	n, err := p.docker.NetworkInspect(ctx, netB, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gateway := n.IPAM.Config[0].Gateway
	bridge := n.Options["com.docker.network.bridge.name"]
	var publishedA string
	for _, b := range cA.NetworkSettings.Ports["8080/tcp"] {
		publishedA = b.HostPort
	}
	_, adminPort, _ := net.SplitHostPort(p.caddy.Admin)
	pg, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	_, httpPort, _ := net.SplitHostPort(p.caddy.HTTP)

	fromB := func(path string) testimage.ProbeResult {
		t.Helper()
		return testimage.Probe(t, http.MethodGet, "http://"+p.caddy.HTTP, host(b1.Subdomain), path)
	}
	for _, attempt := range []struct{ what, path string }{
		{"customer A's container", "/probe/dial?addr=" + net.JoinHostPort(ipA, "8080")},
		{"customer A's container by name", "/probe/resolve?name=" + strings.TrimPrefix(cA.Name, "/")},
		{"customer A's published port", "/probe/dial?addr=127.0.0.1:" + publishedA},
		{"caddy's admin API on the bridge gateway", "/probe/dial?addr=" + net.JoinHostPort(gateway, adminPort)},
		{"postgresql on the bridge gateway", "/probe/dial?addr=" + net.JoinHostPort(gateway, pg.Port())},
		{"the docker socket", "/probe/stat?path=/var/run/docker.sock"},
		{"the docker socket (run)", "/probe/stat?path=/run/docker.sock"},
	} {
		r := fromB(attempt.path)
		t.Logf("probe from customer B: %-40s ok=%v %s", attempt.what, r.OK, r.Error)
		if r.OK {
			t.Errorf("customer B's container reached %s (%s)", attempt.what, attempt.path)
		}
	}
	outsideAddr := outside.Listen(t)
	for _, want := range []struct{ what, path string }{
		{"its sibling site", "/probe/dial?addr=" + net.JoinHostPort(ipB2, "8080")},
		{"its sibling by name", "/probe/resolve?name=" + strings.TrimPrefix(cB2.Name, "/")},
		{"a host outside", "/probe/dial?addr=" + outsideAddr},
		{"the public path (caddy) on the gateway", "/probe/dial?addr=" + net.JoinHostPort(gateway, httpPort)},
	} {
		r := fromB(want.path)
		t.Logf("probe from customer B: %-40s ok=%v %s", want.what, r.OK, r.Error)
		if !r.OK {
			t.Errorf("customer B's container cannot reach %s: %s", want.what, r.Error)
		}
	}

	// A service of the host listening on every address is on the gateway
	// too, until the README's rule fences the tenant bridges off.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	hostService := "/probe/dial?addr=" + net.JoinHostPort(gateway, portOf(ln.Addr()))
	if r := fromB(hostService); !r.OK {
		t.Fatalf("without the firewall rule the host's service on the gateway should answer (the README says so): %s", r.Error)
	}
	// The README's rule, for this test's bridge only (tn+ in production).
	rules := [][]string{
		{"INPUT", "-i", bridge, "-m", "conntrack", "--ctstate", "NEW", "-j", "REJECT"},
		{"INPUT", "-i", bridge, "-p", "tcp", "-m", "multiport", "--dports", httpPort, "-j", "ACCEPT"},
	}
	for _, rule := range rules {
		iptables(t, append([]string{"-I"}, rule...)...)
		t.Cleanup(func() { iptables(t, append([]string{"-D"}, rule...)...) })
	}
	if r := fromB(hostService); r.OK {
		t.Error("with the firewall rule the host's service on the gateway still answers")
	}
	for _, want := range []string{
		"/probe/dial?addr=" + net.JoinHostPort(gateway, httpPort),
		"/probe/dial?addr=" + net.JoinHostPort(ipB2, "8080"),
		"/probe/resolve?name=" + strings.TrimPrefix(cB2.Name, "/"),
		"/probe/dial?addr=" + outsideAddr,
	} {
		if r := fromB(want); !r.OK {
			t.Errorf("with the firewall rule, %s fails: %s", want, r.Error)
		}
	}
}

func portOf(a net.Addr) string { return strconv.Itoa(a.(*net.TCPAddr).Port) }

func iptables(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
		t.Fatalf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
