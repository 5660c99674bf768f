package multitenant

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func adapt(t *testing.T, site string) (string, error) {
	t.Helper()
	src := "{\n\ttenants {\n\t\tdatabase_url postgres://u@db/x\n\t}\n}\n\n" + site
	out, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	return string(out), err
}

func TestTenantProxyCaddyfile(t *testing.T) {
	out, err := adapt(t, `http://:8080 {
	tenant_proxy /app/* {
		page_after 3s
		pages_dir /srv/pages
		header_up X-Site {tenant.site_id}
		lb_try_duration 5s
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []json.RawMessage `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	got := string(cfg.Apps.HTTP.Servers["srv0"].Routes[0])
	for _, want := range []string{
		`"path":["/app/*"]`,
		`{"handler":"tenant","page_after":3000000000,"pages_dir":"/srv/pages"}`,
		`"dynamic_upstreams":{"source":"tenant"}`,
		`"handler":"reverse_proxy"`,
		`"X-Site":["{tenant.site_id}"]`,
		`"try_duration":5000000000`,
		`"stream_close_delay":600000000000`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("route lacks %s:\n%s", want, got)
		}
	}
	if strings.Count(got, "page_after") != 1 || strings.Count(got, "pages_dir") != 1 {
		t.Errorf("tenant options leaked into reverse_proxy:\n%s", got)
	}

	out, err = adapt(t, "http://:8080 {\n\ttenant_proxy {\n\t\tstream_close_delay 1m\n\t}\n}")
	if err != nil || !strings.Contains(out, `"stream_close_delay":60000000000`) {
		t.Fatalf("explicit stream_close_delay: %v\n%s", err, out)
	}
}

func TestTenantProxyCaddyfileErrors(t *testing.T) {
	cases := map[string]string{
		"tenant_proxy {\n\t\tto 127.0.0.1:80\n\t}":       "tenant_proxy chooses its upstream itself; to is not allowed",
		"tenant_proxy {\n\t\tdynamic a example.com\n\t}": "dynamic is not allowed",
		"tenant_proxy {\n\t\tpage_after soon\n\t}":       "page_after:",
		"tenant_proxy {\n\t\tpages_dir\n\t}":             "pages_dir: expected one argument",
		"tenant_proxy {\n\t\tbogus 1\n\t}":               "bogus",
		"tenant {\n\t\tbogus 1\n\t}":                     `unrecognized tenant option "bogus"`,
		"tenant extra":                                   "wrong argument count",
	}
	for directive, want := range cases {
		_, err := adapt(t, "http://:8080 {\n\t"+directive+"\n}")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to contain %q", directive, err, want)
		}
	}
}
