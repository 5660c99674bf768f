package provisioner

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/agistaffers/caddy-multitenant/internal/outside"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
)

func customerSpec(siteID, customerID string) Spec {
	s := testSpec(siteID)
	s.CustomerID = customerID
	return s
}

// probe runs a probe of the test server from inside the container behind
// upstream.
func probe(t *testing.T, upstream, path string) testimage.ProbeResult {
	t.Helper()
	method := "GET"
	if strings.HasPrefix(path, "/probe/write") {
		method = "PUT"
	}
	return testimage.Probe(t, method, "http://"+upstream, "", path)
}

// networksOf returns the names of the networks c is attached to, sorted.
func networksOf(c container.InspectResponse) []string {
	var names []string
	for n := range c.NetworkSettings.Networks {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func ipOn(t *testing.T, c container.InspectResponse, network string) string {
	t.Helper()
	ep := c.NetworkSettings.Networks[network]
	if ep == nil || ep.IPAddress == "" {
		t.Fatalf("container %s has no address on %s (networks %v)", c.Name, network, networksOf(c))
	}
	return ep.IPAddress
}

func networkExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := docker(t).NetworkInspect(context.Background(), name, network.InspectOptions{})
	if err != nil && !isNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// A customer's containers reach each other, by address and by name, and
// never another customer's; each customer's network is its own bridge on
// a subnet of the pool, and goes with the customer's last container.
func TestCustomersAreIsolated(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	ns := p.cfg.Namespace
	custA, custB := randID("c"), randID("c")
	a, b1, b2 := randID("s"), randID("s"), randID("s")
	ensure(t, p, customerSpec(a, custA))
	upB1 := ensure(t, p, customerSpec(b1, custB))
	ensure(t, p, customerSpec(b2, custB))
	netA, netB := networkName(ns, custA, false), networkName(ns, custB, false)

	ca, cb2 := inspect(t, p.Status(a).ContainerID), inspect(t, p.Status(b2).ContainerID)
	if got := networksOf(ca); !slices.Equal(got, []string{netA}) {
		t.Errorf("customer A's container is on %v, want only %s", got, netA)
	}
	if got := networksOf(cb2); !slices.Equal(got, []string{netB}) {
		t.Errorf("customer B's container is on %v, want only %s", got, netB)
	}
	ipA, ipB2 := ipOn(t, ca, netA), ipOn(t, cb2, netB)

	if r := probe(t, upB1, "/probe/dial?addr="+ipA+":8080"); r.OK {
		t.Errorf("customer B's container reached customer A's at %s:8080", ipA)
	}
	if r := probe(t, upB1, "/probe/resolve?name="+containerName(ns, a)); r.OK {
		t.Errorf("customer A's container name resolves inside customer B's: %s", r.Value)
	}
	if r := probe(t, upB1, "/probe/dial?addr="+ipB2+":8080"); !r.OK {
		t.Errorf("customer B's site cannot reach its sibling at %s:8080: %s", ipB2, r.Error)
	}
	if r := probe(t, upB1, "/probe/resolve?name="+containerName(ns, b2)); !r.OK || r.Value != ipB2 {
		t.Errorf("sibling's name resolves to %q (%s), want %s", r.Value, r.Error, ipB2)
	}

	n, err := docker(t).NetworkInspect(context.Background(), netB, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels[LabelNamespace] != ns || n.Labels[LabelCustomer] != custB || n.Labels[LabelEgress] != "true" || n.Internal {
		t.Errorf("network %s: labels %v internal %v", netB, n.Labels, n.Internal)
	}
	if got := n.Options["com.docker.network.bridge.name"]; got != bridgeName(netB) || !strings.HasPrefix(got, "tn") || len(got) > 15 {
		t.Errorf("bridge name %q, want %q", got, bridgeName(netB))
	}
	if len(n.IPAM.Config) != 1 {
		t.Fatalf("IPAM config %+v", n.IPAM.Config)
	}
	subnet := netip.MustParsePrefix(n.IPAM.Config[0].Subnet)
	if subnet.Bits() != DefaultSubnetBits || !DefaultSubnetPool.Contains(subnet.Addr()) {
		t.Errorf("subnet %s, want a /%d of %s", subnet, DefaultSubnetBits, DefaultSubnetPool)
	}

	if err := p.RemoveSite(context.Background(), b1, true); err != nil {
		t.Fatal(err)
	}
	if !networkExists(t, netB) {
		t.Fatal("customer B's network went while it still had a site")
	}
	if err := p.RemoveSite(context.Background(), b2, true); err != nil {
		t.Fatal(err)
	}
	if networkExists(t, netB) {
		t.Error("customer B's network outlived its last site")
	}
	if !networkExists(t, netA) {
		t.Error("customer A's network went with customer B's last site")
	}
}

// A site without egress reaches nothing outside its customer's sites,
// which still reach it; Caddy reaches it by its address.
func TestNoEgress(t *testing.T) {
	t.Parallel()
	outside := outside.Listen(t)

	p := newProv(t, nil)
	ns := p.cfg.Namespace
	cust := randID("c")
	on, off := randID("s"), randID("s")
	upOn := ensure(t, p, customerSpec(on, cust))
	specOff := customerSpec(off, cust)
	specOff.NoEgress = true
	upOff := ensure(t, p, specOff)
	main, internal := networkName(ns, cust, false), networkName(ns, cust, true)

	cOff, cOn := inspect(t, p.Status(off).ContainerID), inspect(t, p.Status(on).ContainerID)
	if got := networksOf(cOff); !slices.Equal(got, []string{internal}) {
		t.Errorf("site without egress is on %v, want only %s", got, internal)
	}
	if upOff != net.JoinHostPort(ipOn(t, cOff, internal), "8080") || len(cOff.HostConfig.PortBindings) != 0 {
		t.Errorf("upstream %s, port bindings %v: want the container's own address, nothing published", upOff, cOff.HostConfig.PortBindings)
	}
	if got := networksOf(cOn); !slices.Equal(got, []string{main, internal}) {
		t.Errorf("the customer's site with egress is on %v, want %s and %s", got, main, internal)
	}

	if r := probe(t, upOn, "/probe/dial?addr="+outside); !r.OK {
		t.Fatalf("site with egress cannot reach %s outside: %s", outside, r.Error)
	}
	if r := probe(t, upOff, "/probe/dial?addr="+outside); r.OK {
		t.Errorf("site without egress reached %s outside", outside)
	}
	if r := probe(t, upOff, "/probe/dial?addr="+ipOn(t, cOn, internal)+":8080"); !r.OK {
		t.Errorf("site without egress cannot reach its customer's other site: %s", r.Error)
	}
	if r := probe(t, upOn, "/probe/dial?addr="+upOff); !r.OK {
		t.Errorf("site with egress cannot reach its customer's site without: %s", r.Error)
	}
	n, err := docker(t).NetworkInspect(context.Background(), internal, network.InspectOptions{})
	if err != nil || !n.Internal || n.Labels[LabelEgress] != "false" {
		t.Errorf("internal network %+v, %v", n, err)
	}
}

// In network mode (Caddy in a container on Config.Network) every customer
// network gets Caddy's containers connected, sites never join Caddy's
// network, and the upstream is the site's address on its customer network.
func TestNetworkModeAttachesCaddy(t *testing.T) {
	t.Parallel()
	cli := docker(t)
	ctx := context.Background()
	caddyNet := randID("tcaddy")
	if _, err := cli.NetworkCreate(ctx, caddyNet, network.CreateOptions{Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last registered first: the stand-ins, then the
	// provisioner's namespace, then this network.
	t.Cleanup(func() {
		if err := cli.NetworkRemove(context.Background(), caddyNet); err != nil {
			t.Errorf("removing network: %v", err)
		}
	})
	p := newProv(t, func(c *Config) { c.Network = caddyNet })
	standIn := runStandIn(t, caddyNet)
	ns := p.cfg.Namespace

	custA, custB := randID("c"), randID("c")
	a, b := randID("s"), randID("s")
	upA := ensure(t, p, customerSpec(a, custA))
	upB := ensure(t, p, customerSpec(b, custB))
	netA, netB := networkName(ns, custA, false), networkName(ns, custB, false)
	cA := inspect(t, p.Status(a).ContainerID)
	if got := networksOf(cA); !slices.Equal(got, []string{netA}) {
		t.Errorf("site container is on %v, want only %s", got, netA)
	}
	if upA != net.JoinHostPort(ipOn(t, cA, netA), "8080") || len(cA.HostConfig.PortBindings) != 0 {
		t.Errorf("upstream %s, port bindings %v", upA, cA.HostConfig.PortBindings)
	}
	s := inspect(t, standIn)
	if got := networksOf(s); !slices.Equal(got, sorted(caddyNet, netA, netB)) {
		t.Fatalf("caddy's container is on %v, want %v", got, sorted(caddyNet, netA, netB))
	}
	caddyAt := net.JoinHostPort(ipOn(t, s, caddyNet), "8080")
	for _, up := range []string{upA, upB} {
		if r := probe(t, caddyAt, "/probe/dial?addr="+up); !r.OK {
			t.Errorf("caddy's container cannot reach the site at %s: %s", up, r.Error)
		}
	}
	if r := probe(t, upB, "/probe/dial?addr="+upA); r.OK {
		t.Errorf("customer B's container reached customer A's at %s", upA)
	}

	// A Caddy container that comes later joins at its provisioner's start.
	standIn2 := runStandIn(t, caddyNet)
	cfg := p.cfg
	startProv(t, cfg)
	if got := networksOf(inspect(t, standIn2)); !slices.Equal(got, sorted(caddyNet, netA, netB)) {
		t.Errorf("the later caddy container is on %v, want %v", got, sorted(caddyNet, netA, netB))
	}

	// The customer's network goes with its last site, Caddy's containers
	// disconnected from it first.
	if err := p.RemoveSite(ctx, a, true); err != nil {
		t.Fatal(err)
	}
	if networkExists(t, netA) {
		t.Error("customer A's network outlived its last site")
	}
	if got := networksOf(inspect(t, standIn)); !slices.Equal(got, sorted(caddyNet, netB)) {
		t.Errorf("caddy's container is on %v after customer A left, want %v", got, sorted(caddyNet, netB))
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// runStandIn runs the test image on network as Caddy's container would be,
// removed when the test ends.
func runStandIn(t *testing.T, networkName string) string {
	t.Helper()
	cli := docker(t)
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: testimage.DefaultTag},
		&container.HostConfig{NetworkMode: container.NetworkMode(networkName)}, nil, nil, randID("caddy-standin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("removing stand-in: %v", err)
		}
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

// A template's user and read-only root apply, with a writable /tmp and
// swap no more than the memory limit.
func TestContainerHardening(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	site := randID("s")
	spec := customerSpec(site, randID("c"))
	spec.User = "1000:1000"
	spec.ReadOnly = true
	spec.MemoryBytes = 64 << 20
	up := ensure(t, p, spec)
	c := inspect(t, p.Status(site).ContainerID)
	if c.Config.User != "1000:1000" || !c.HostConfig.ReadonlyRootfs || c.HostConfig.Tmpfs["/tmp"] != tmpfsTmp {
		t.Errorf("user %q read-only %v tmpfs %v", c.Config.User, c.HostConfig.ReadonlyRootfs, c.HostConfig.Tmpfs)
	}
	if c.HostConfig.Memory != 64<<20 || c.HostConfig.MemorySwap != 128<<20 {
		t.Errorf("memory %d swap+memory %d, want %d and %d", c.HostConfig.Memory, c.HostConfig.MemorySwap, 64<<20, 128<<20)
	}
	if r := probe(t, up, "/probe/whoami"); r.Value != "1000:1000" {
		t.Errorf("runs as %q, want 1000:1000", r.Value)
	}
	if r := probe(t, up, "/probe/write?path=/probe-file"); r.OK || !strings.Contains(r.Error, "read-only file system") {
		t.Errorf("writing to the root filesystem: ok %v, %s", r.OK, r.Error)
	}
	if r := probe(t, up, "/probe/write?path=/tmp/probe-file"); !r.OK {
		t.Errorf("writing to /tmp: %s", r.Error)
	}
}

// Customer networks take subnets from the pool, skipping taken ones; an
// exhausted pool fails the start with a message naming the option, and a
// removed customer's subnet is free again.
func TestSubnetPool(t *testing.T) {
	t.Parallel()
	pool := netip.MustParsePrefix("10.254.254.0/28")
	p := newProv(t, func(c *Config) { c.SubnetPool, c.SubnetBits = pool, 29 })
	s1, s2, s3 := randID("s"), randID("s"), randID("s")
	ensure(t, p, customerSpec(s1, randID("c")))
	ensure(t, p, customerSpec(s2, randID("c")))
	var subnets []string
	for _, s := range []string{s1, s2} {
		c := inspect(t, p.Status(s).ContainerID)
		for name := range c.NetworkSettings.Networks {
			n, err := docker(t).NetworkInspect(context.Background(), name, network.InspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			subnets = append(subnets, n.IPAM.Config[0].Subnet)
		}
	}
	if slices.Sort(subnets); !slices.Equal(subnets, []string{"10.254.254.0/29", "10.254.254.8/29"}) {
		t.Errorf("subnets %v, want both /29s of %s", subnets, pool)
	}

	third := customerSpec(s3, randID("c"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := p.Ensure(ctx, third)
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(se.Error(), "no free /29 left in the subnet pool 10.254.254.0/28") ||
		!strings.Contains(se.Error(), "subnet_pool") {
		t.Fatalf("start on an exhausted pool: %v", err)
	}
	if err := p.RemoveSite(ctx, s1, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a start once a subnet is free", func() bool {
		_, err := p.Ensure(ctx, third)
		return err == nil
	})
}

// A capability the platform does not allow fails the start, whatever the
// spec says.
func TestCapabilityNotAllowed(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.AllowedCapabilities = []string{"CHOWN", "NET_BIND_SERVICE"} })
	spec := customerSpec(randID("s"), randID("c"))
	spec.CapAdd = []string{"NET_BIND_SERVICE", "SYS_ADMIN"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := p.Ensure(ctx, spec)
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "capability SYS_ADMIN is not allowed") {
		t.Fatalf("start with SYS_ADMIN: %v", err)
	}
	if cs := siteContainers(t, p.cfg.Namespace, spec.SiteID); len(cs) != 0 {
		t.Errorf("a container was made: %v", cs)
	}
}

func TestHost(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	h, err := p.Host(context.Background())
	if err != nil || h.CPUs < 1 || h.MemoryBytes < 64<<20 || h.NanoCPUs() != int64(h.CPUs)*1e9 {
		t.Fatalf("host %+v, %v", h, err)
	}
}
