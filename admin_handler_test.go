package multitenant

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestAdminHandlerCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`tenant_admin {
		max_body 512KiB
		public_ips 203.0.113.10 2001:db8::10
		public_ips 198.51.100.1
		cname_target edge.example.com
		dns_resolver 127.0.0.1:5353
	}`)
	var h AdminHandler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(h)
	want := `{"max_body":524288,"public_ips":["203.0.113.10","2001:db8::10","198.51.100.1"],"cname_target":"edge.example.com","dns_resolver":"127.0.0.1:5353"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{
		"tenant_admin extra",
		"tenant_admin {\n unknown 1\n}",
		"tenant_admin {\n max_body lots\n}",
		"tenant_admin {\n max_body 1XB\n}",
		"tenant_admin {\n public_ips\n}",
		"tenant_admin {\n cname_target a b\n}",
	} {
		var h AdminHandler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "1MiB": 1 << 20, "1MB": 1e6, "64KiB": 64 << 10, "2.5KB": 2500, "1gib": 1 << 30, "10B": 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "MiB", "1 XiB", "1.2.3", "lots"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}
