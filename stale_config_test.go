package multitenant

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfileServeStale(t *testing.T) {
	var app App
	input := "tenants {\ndatabase_url postgres://x\nserve_stale {\nmax_site_bytes 16MiB\nmax_response_bytes 256KiB\nmax_memory_bytes 1GiB\npersist off\n}\n}"
	if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	c := app.ServeStale
	if c == nil || c.MaxSiteBytes != 16<<20 || c.MaxResponseBytes != 256<<10 || c.MaxMemoryBytes != 1<<30 || c.Persist == nil || *c.Persist {
		t.Fatalf("serve_stale = %+v", c)
	}
	if err := expandAndValidate(&app); err != nil {
		t.Fatal(err)
	}

	// Without the option: the defaults, persisted.
	var plain App
	if err := plain.UnmarshalCaddyfile(caddyfile.NewTestDispenser("tenants {\ndatabase_url postgres://x\n}")); err != nil {
		t.Fatal(err)
	}
	if err := expandAndValidate(&plain); err != nil {
		t.Fatal(err)
	}
	if c := plain.ServeStale; c.MaxSiteBytes != DefaultStaleMaxSiteBytes || c.MaxResponseBytes != DefaultStaleMaxResponseBytes ||
		c.MaxMemoryBytes != DefaultStaleMaxMemoryBytes || !*c.Persist {
		t.Fatalf("default serve_stale = %+v", c)
	}

	// A site bound below the default response bound lowers it.
	var small App
	if err := small.UnmarshalCaddyfile(caddyfile.NewTestDispenser("tenants {\ndatabase_url postgres://x\nserve_stale {\nmax_site_bytes 64KiB\n}\n}")); err != nil {
		t.Fatal(err)
	}
	if err := expandAndValidate(&small); err != nil || small.ServeStale.MaxResponseBytes != 64<<10 {
		t.Fatalf("max_response_bytes under a 64 KiB site bound: %d, %v", small.ServeStale.MaxResponseBytes, err)
	}

	wantUnmarshalErrors(t, map[string]string{
		"tenants {\nserve_stale on\n}":                                 "wrong argument count",
		"tenants {\nserve_stale {\nmax_bytes 1MiB\n}\n}":               `unrecognized serve_stale option "max_bytes"`,
		"tenants {\nserve_stale {\nmax_site_bytes\n}\n}":               "max_site_bytes: expected one argument",
		"tenants {\nserve_stale {\nmax_site_bytes lots\n}\n}":          `max_site_bytes: "lots" is not a size`,
		"tenants {\nserve_stale {\nmax_response_bytes 0\n}\n}":         `max_response_bytes: "0" is not a size`,
		"tenants {\nserve_stale {\nmax_response_bytes 1MiB 2MiB\n}\n}": "max_response_bytes: expected one argument, got more",
		"tenants {\nserve_stale {\nmax_memory_bytes -1\n}\n}":          `max_memory_bytes: "-1" is not a size`,
		"tenants {\nserve_stale {\npersist maybe\n}\n}":                `serve_stale persist: "maybe": expected on or off`,
		"tenants {\nserve_stale {\npersist\n}\n}":                      "persist: expected one argument",
	})

	var tight App
	input = "tenants {\ndatabase_url postgres://x\nserve_stale {\nmax_site_bytes 64MiB\nmax_memory_bytes 32MiB\n}\n}"
	if err := tight.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	if err := expandAndValidate(&tight); err == nil || !strings.Contains(err.Error(), "serve_stale max_memory_bytes: 32 MiB is less than max_site_bytes (64 MiB)") {
		t.Fatalf("a memory bound below the site bound: %v", err)
	}
	var big App
	input = "tenants {\ndatabase_url postgres://x\nserve_stale {\nmax_site_bytes 512MiB\n}\n}"
	if err := big.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	if err := expandAndValidate(&big); err != nil || big.ServeStale.MaxMemoryBytes != 512<<20 {
		t.Fatalf("the memory bound under a 512 MiB site bound: %d, %v", big.ServeStale.MaxMemoryBytes, err)
	}

	var inverted App
	input = "tenants {\ndatabase_url postgres://x\nserve_stale {\nmax_site_bytes 1MiB\nmax_response_bytes 2MiB\n}\n}"
	if err := inverted.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	if err := expandAndValidate(&inverted); err == nil || !strings.Contains(err.Error(), "serve_stale max_response_bytes: 2.0 MiB is more than max_site_bytes (1.0 MiB)") {
		t.Fatalf("a response bound above the site bound: %v", err)
	}
}
