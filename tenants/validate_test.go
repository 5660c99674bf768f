package tenants

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateSubdomain(t *testing.T) {
	reserved := []string{"admin", "www"}
	good := []string{"a", "acme", "acme-shop", "a1", "1a", "x" + strings.Repeat("y", 62)}
	bad := []string{"", "-a", "a-", "Acme", "a_b", "a.b", "a b", "admin", "www", strings.Repeat("x", 64), "ü", "a\x00"}
	for _, s := range good {
		if err := ValidateSubdomain(s, reserved); err != nil {
			t.Errorf("ValidateSubdomain(%q) = %v, want ok", s, err)
		}
	}
	for _, s := range bad {
		if err := ValidateSubdomain(s, reserved); err == nil {
			t.Errorf("ValidateSubdomain(%q) accepted", s)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	cases := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"Example.COM", "example.com"},
		{"example.com.", "example.com"},
		{"example.com:8443", "example.com"},
		{"WWW.Example.com.:80", "www.example.com"},
		{"bücher.de", "xn--bcher-kva.de"},
		{"BÜCHER.de", "xn--bcher-kva.de"},
		{"xn--bcher-kva.de", "xn--bcher-kva.de"},
		{"a-b.c-d.example", "a-b.c-d.example"},
		{"localhost", "localhost"},
		{"demo.localhost:8080", "demo.localhost"},
	}
	for _, c := range cases {
		got, err := NormalizeHost(c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := []string{"", ".", ":80", "example.com:", "example.com:abc", "example.com:123456",
		"127.0.0.1", "127.1", "[::1]", "[::1]:80", "::1", "a..b", "-a.com", "a-.com", "a_b.com",
		"a b.com", "exa mple.com", strings.Repeat("a", 64) + ".com", strings.Repeat("abcdefgh.", 30) + "com",
		"example.com/path", "ex\x00ample.com", "xn--zz.com", "1.2.3.4:80"}
	for _, in := range bad {
		if got, err := NormalizeHost(in); err == nil {
			t.Errorf("NormalizeHost(%q) = %q, want an error", in, got)
		}
	}
}

func TestValidateImage(t *testing.T) {
	good := []string{"nginx", "nginx:1.27", "library/nginx:latest", "ghcr.io/owner/app:v1",
		"registry.local:5000/a/b:c", "nginx@sha256:" + strings.Repeat("a", 64), "caddy-multitenant-test:dev"}
	bad := []string{"", "Nginx", "nginx:", ":tag", "nginx:la test", "nginx@sha256:zz", "a//b", "-nginx", "nginx;rm -rf /"}
	for _, s := range good {
		if err := ValidateImage(s); err != nil {
			t.Errorf("ValidateImage(%q) = %v, want ok", s, err)
		}
	}
	for _, s := range bad {
		if err := ValidateImage(s); err == nil {
			t.Errorf("ValidateImage(%q) accepted", s)
		}
	}
}

func TestValidateTemplate(t *testing.T) {
	base := func() Template {
		return Template{Slug: "php", Name: "PHP", Image: "php:8-apache", Port: 80, DataPath: "/var/www/html", HealthPath: "/"}
	}
	ok := base()
	if err := validateTemplate(&ok); err != nil {
		t.Fatalf("valid template refused: %v", err)
	}
	cases := map[string]func(*Template){
		"slug":         func(t *Template) { t.Slug = "PHP!" },
		"name":         func(t *Template) { t.Name = " " },
		"image":        func(t *Template) { t.Image = "no good" },
		"port":         func(t *Template) { t.Port = 70000 },
		"env":          func(t *Template) { t.Env = map[string]string{"A-B": "x"} },
		"data_path":    func(t *Template) { t.DataPath = "relative/path" },
		"health_path":  func(t *Template) { t.HealthPath = "health" },
		"memory_bytes": func(t *Template) { t.MemoryBytes = -1 },
		"nano_cpus":    func(t *Template) { t.NanoCPUs = -5 },
		"pids_limit":   func(t *Template) { t.PidsLimit = -1 },
		"cap_add":      func(t *Template) { t.CapAdd = []string{"ALL"} },
		"pids_limit ":  func(t *Template) { t.PidsLimit = MaxPidsLimit + 1 },
		"nano_cpus ":   func(t *Template) { t.NanoCPUs = 1000 },
		"cap_add ":     func(t *Template) { t.CapAdd = []string{"NET_BIND_SERVICE", "CAP_NOT_REAL"} },
		"user":         func(t *Template) { t.User = "www-data" },
		"user ":        func(t *Template) { t.User = "1000:" },
		"user  ":       func(t *Template) { t.User = "4294967296" },
	}
	for field, mutate := range cases {
		tpl := base()
		mutate(&tpl)
		wantInvalid(t, validateTemplate(&tpl), strings.TrimSpace(field))
	}
}

// Capabilities are taken in any spelling Docker takes, stored by their
// kernel name, and the privileged ones only when the operator allows them.
func TestTemplateCapabilities(t *testing.T) {
	tpl := Template{Slug: "x", Name: "X", Image: "nginx", Port: 80,
		CapAdd: []string{"chown", "CAP_NET_BIND_SERVICE", "CHOWN", "sys_ptrace"}, User: "1000:1000"}
	allowed, err := AllowedCapabilities([]string{"cap_sys_ptrace"})
	if err != nil {
		t.Fatal(err)
	}
	if err := validateTemplateAllowing(&tpl, allowed); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tpl.CapAdd, []string{"CHOWN", "NET_BIND_SERVICE", "SYS_PTRACE"}) {
		t.Errorf("stored as %v", tpl.CapAdd)
	}
	for _, c := range []string{"SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH", "SYS_RAWIO", "BPF"} {
		tpl := Template{Slug: "x", Name: "X", Image: "nginx", Port: 80, CapAdd: []string{c}}
		unprivileged, _ := AllowedCapabilities(nil)
		wantInvalid(t, validateTemplateAllowing(&tpl, unprivileged), "cap_add")
	}
	for _, c := range UnprivilegedCapabilities {
		tpl := Template{Slug: "x", Name: "X", Image: "nginx", Port: 80, CapAdd: []string{c}}
		unprivileged, _ := AllowedCapabilities(nil)
		if err := validateTemplateAllowing(&tpl, unprivileged); err != nil {
			t.Errorf("%s refused: %v", c, err)
		}
	}
	if _, err := AllowedCapabilities([]string{"SYS_ADMN"}); err == nil {
		t.Error("a misspelt allowed capability was taken")
	}
}

// Each limit comes from the template, else the plan, else the platform.
func TestRouteLimits(t *testing.T) {
	r := Route{Template: Template{MemoryBytes: 64 << 20}, Plan: Limits{MemoryBytes: 1 << 30, NanoCPUs: 5e8}}
	got := r.Limits(Limits{MemoryBytes: 512 << 20, NanoCPUs: 1e9, PidsLimit: 512})
	if got != (Limits{MemoryBytes: 64 << 20, NanoCPUs: 5e8, PidsLimit: 512}) {
		t.Fatalf("limits %+v", got)
	}
}

// FuzzNormalizeHost checks that normalization is idempotent and that what
// it returns is always a lowercase ASCII DNS name.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"example.com", "Example.COM.:443", "bücher.de", "xn--bcher-kva.de", "[::1]:80", "127.0.0.1", "a_b", "ß.de", "\u200d.com", "ｅｘａｍｐｌｅ.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizeHost(in)
		if err != nil {
			return
		}
		if got == "" || len(got) > 253 {
			t.Fatalf("NormalizeHost(%q) = %q", in, got)
		}
		for _, l := range strings.Split(got, ".") {
			if !IsLabel(l) {
				t.Fatalf("NormalizeHost(%q) = %q with bad label %q", in, got, l)
			}
		}
		again, err := NormalizeHost(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, got, again, err)
		}
	})
}
