package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/agistaffers/caddy-multitenant/internal/dnstest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// limitsPlatform is an admin platform with default limits, an allowed
// privileged capability and egress off by default.
func limitsPlatform(t *testing.T) *adminPlatform {
	t.Helper()
	return startAdminPlatform(t, dnstest.Start(t), platformOptions{
		Tenants: `limits {
			memory 96MiB
			cpus   0.5
			pids   100
		}
		allow_capabilities SYS_PTRACE
		egress off`,
		Sites: fmt.Sprintf(`http://%s:{HTTP_PORT} {
	tenant_admin
}`, adminHost),
	})
}

// Each limit of a container comes from its template, else its customer's
// plan, else the platform's default; a plan's change reaches the next
// container; hardening fields and capabilities apply as asked.
func TestContainerLimitsAndHardening(t *testing.T) {
	t.Parallel()
	p := limitsPlatform(t)
	image := testimage.Build(t, testimage.DefaultTag)

	var plan tenants.Plan
	p.mustAPI("POST", "/api/v1/plans", map[string]any{"slug": "small", "name": "Small", "max_sites": 5,
		"memory_bytes": 128 << 20, "nano_cpus": 250_000_000}, 201, &plan)
	var bare, mem, hard tenants.Template
	p.mustAPI("POST", "/api/v1/templates", map[string]any{"slug": "bare", "name": "Bare", "image": image, "port": 8080,
		"egress": true}, 201, &bare)
	p.mustAPI("POST", "/api/v1/templates", map[string]any{"slug": "mem", "name": "Mem", "image": image, "port": 8080,
		"memory_bytes": 80 << 20, "egress": true}, 201, &mem)
	p.mustAPI("POST", "/api/v1/templates", map[string]any{"slug": "hard", "name": "Hard", "image": image, "port": 8080,
		"user": "1000:1000", "read_only": true, "cap_add": []string{"net_bind_service", "CAP_SYS_PTRACE"}}, 201, &hard)
	if !slices.Equal(hard.CapAdd, []string{"NET_BIND_SERVICE", "SYS_PTRACE"}) || hard.User != "1000:1000" || !hard.ReadOnly || hard.Egress != nil {
		t.Fatalf("template as stored: %+v", hard)
	}
	var plain, onPlan tenants.Customer
	p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": "plain@example.org", "name": "Plain"}, 201, &plain)
	p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": "plan@example.org", "name": "On plan", "plan_id": plan.ID}, 201, &onPlan)

	site := func(c tenants.Customer, tpl tenants.Template, sub string) container.InspectResponse {
		t.Helper()
		return p.inspectSite(p.siteOf(&c, &tpl, sub))
	}
	type limits struct{ memory, cpus, pids int64 }
	got := func(c container.InspectResponse) limits {
		var pids int64
		if c.HostConfig.PidsLimit != nil {
			pids = *c.HostConfig.PidsLimit
		}
		return limits{c.HostConfig.Memory, c.HostConfig.NanoCPUs, pids}
	}
	for _, tc := range []struct {
		name, subdomain string
		customer        tenants.Customer
		template        tenants.Template
		want            limits
	}{
		{"platform defaults", "defaults", plain, bare, limits{96 << 20, 500_000_000, 100}},
		{"template, then plan, then platform", "mixed", onPlan, mem, limits{80 << 20, 250_000_000, 100}},
		{"plan, then platform", "planned", onPlan, bare, limits{128 << 20, 250_000_000, 100}},
	} {
		c := site(tc.customer, tc.template, tc.subdomain)
		if g := got(c); g != tc.want {
			t.Errorf("%s: memory %d cpus %d pids %d, want %+v", tc.name, g.memory, g.cpus, g.pids, tc.want)
		}
		if c.HostConfig.MemorySwap != 2*c.HostConfig.Memory {
			t.Errorf("%s: memory+swap %d, want twice the memory %d", tc.name, c.HostConfig.MemorySwap, c.HostConfig.Memory)
		}
	}

	c := site(plain, hard, "hardened")
	hc := c.HostConfig
	if c.Config.User != "1000:1000" || !hc.ReadonlyRootfs || hc.Tmpfs["/tmp"] == "" {
		t.Errorf("user %q, read-only %v, tmpfs %v", c.Config.User, hc.ReadonlyRootfs, hc.Tmpfs)
	}
	capAdd := make([]string, len(hc.CapAdd))
	for i, c := range hc.CapAdd {
		capAdd[i] = strings.TrimPrefix(c, "CAP_") // engines differ in how they report them
	}
	if !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Equal(capAdd, []string{"NET_BIND_SERVICE", "SYS_PTRACE"}) ||
		!slices.Equal(hc.SecurityOpt, []string{"no-new-privileges"}) {
		t.Errorf("cap drop %v, cap add %v, security %v", hc.CapDrop, hc.CapAdd, hc.SecurityOpt)
	}
	if r := testimage.Probe(t, "GET", "http://"+p.caddy.HTTP, host("hardened"), "/probe/whoami"); r.Value != "1000:1000" {
		t.Errorf("runs as %q", r.Value)
	}
	if r := testimage.Probe(t, "PUT", "http://"+p.caddy.HTTP, host("hardened"), "/probe/write?path=/etc/x"); r.OK {
		t.Error("wrote to the read-only root filesystem")
	}
	// The platform's egress off applies to a template that does not say.
	if net, _ := onlyNetwork(t, c); !strings.HasSuffix(net, "-internal") {
		t.Errorf("site of a template without egress setting is on %s, want its customer's internal network", net)
	}

	// A plan's change reaches the site's next container: the resolver
	// hears of it (plans notify) and the changed spec recreates it.
	var planSite []tenants.Site
	var sites struct{ Items []tenants.Site }
	p.mustAPI("GET", "/api/v1/sites?customer_id="+onPlan.ID+"&template_id="+bare.ID, nil, 200, &sites)
	planSite = sites.Items
	if len(planSite) != 1 {
		t.Fatalf("sites of the plan customer on bare: %+v", planSite)
	}
	p.mustAPI("PATCH", "/api/v1/plans/"+plan.ID, map[string]any{"memory_bytes": 160 << 20}, 200, nil)
	p.mustAPI("POST", "/api/v1/sites/"+planSite[0].ID+"/stop", nil, 200, nil)
	eventually(t, 10*time.Second, "the plan's new memory limit on the next container", func() bool {
		st, _, _ := p.get(host(planSite[0].Subdomain), "/", nil)
		list := p.containers(planSite[0].ID)
		if st != http.StatusOK || len(list) != 1 {
			return false
		}
		c, err := p.docker.ContainerInspect(context.Background(), list[0].ID)
		return err == nil && c.HostConfig.Memory == 160<<20
	})
}

// Limits beyond what the Docker host has, capabilities that hand the host
// over (unless allowed) or that do not exist, and bad users are refused
// with 422 naming the field; nothing is written.
func TestLimitsAndCapabilitiesRefused(t *testing.T) {
	t.Parallel()
	p := limitsPlatform(t)
	tpl := func(extra map[string]any) map[string]any {
		m := map[string]any{"slug": "refused", "name": "Refused", "image": "nginx:1.27", "port": 80}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	before := p.snapshot()
	for _, tc := range []struct {
		path  string
		body  map[string]any
		field string
	}{
		{"/api/v1/templates", tpl(map[string]any{"memory_bytes": int64(1) << 50}), "memory_bytes"},
		{"/api/v1/templates", tpl(map[string]any{"nano_cpus": int64(100_000) * 1e9}), "nano_cpus"},
		{"/api/v1/templates", tpl(map[string]any{"pids_limit": 40000}), "pids_limit"},
		{"/api/v1/templates", tpl(map[string]any{"memory_bytes": -1}), "memory_bytes"},
		{"/api/v1/templates", tpl(map[string]any{"cap_add": []string{"SYS_ADMIN"}}), "cap_add"},
		{"/api/v1/templates", tpl(map[string]any{"cap_add": []string{"NET_ADMIN"}}), "cap_add"},
		{"/api/v1/templates", tpl(map[string]any{"cap_add": []string{"NOT_A_CAP"}}), "cap_add"},
		{"/api/v1/templates", tpl(map[string]any{"cap_add": []string{"ALL"}}), "cap_add"},
		{"/api/v1/templates", tpl(map[string]any{"user": "root"}), "user"},
		{"/api/v1/templates", tpl(map[string]any{"user": "1000:99999999999"}), "user"},
		{"/api/v1/plans", map[string]any{"slug": "huge", "name": "Huge", "memory_bytes": int64(1) << 50}, "memory_bytes"},
		{"/api/v1/plans", map[string]any{"slug": "huge", "name": "Huge", "nano_cpus": int64(100_000) * 1e9}, "nano_cpus"},
		{"/api/v1/plans", map[string]any{"slug": "huge", "name": "Huge", "pids_limit": 1 << 20}, "pids_limit"},
	} {
		var e apiError
		status, _, raw := p.api(p.token, "POST", tc.path, tc.body, &e)
		if status != http.StatusUnprocessableEntity || e.Error.Field != tc.field {
			t.Errorf("POST %s %v: %d field %q (%s), want 422 field %s", tc.path, tc.body, status, e.Error.Field, raw, tc.field)
		}
	}
	if after := p.snapshot(); after != before {
		t.Errorf("refused writes changed the data: %+v → %+v", before, after)
	}

	// The same through PATCH, on a template that exists.
	var ok tenants.Template
	p.mustAPI("POST", "/api/v1/templates", tpl(map[string]any{"cap_add": []string{"SYS_PTRACE"}, "egress": false}), 201, &ok)
	if ok.Egress == nil || *ok.Egress {
		t.Fatalf("egress as stored: %v", ok.Egress)
	}
	for field, value := range map[string]any{"memory_bytes": int64(1) << 50, "cap_add": []string{"SYS_MODULE"}, "user": "x"} {
		var e apiError
		status, _, raw := p.api(p.token, "PATCH", "/api/v1/templates/"+ok.ID, map[string]any{field: value}, &e)
		if status != http.StatusUnprocessableEntity || e.Error.Field != field {
			t.Errorf("PATCH %s=%v: %d %s", field, value, status, raw)
		}
	}
	// egress back to the platform's default with null.
	var patched tenants.Template
	p.mustAPI("PATCH", "/api/v1/templates/"+ok.ID, `{"egress": null}`, 200, &patched)
	if patched.Egress != nil || patched.Version != ok.Version+1 {
		t.Errorf("after egress null: egress %v version %d", patched.Egress, patched.Version)
	}
}
