package multitenant

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	input := `tenants {
		database_url {env.DATABASE_URL}
		schema       platform
		base_domain  example.com
		reserved     admin www
		reserved     api
		docker {
			host       unix:///var/run/docker.sock
			publish_ip 127.0.0.2
			network    tenants
		}
		idle_timeout  15m
		start_timeout 1m30s
		max_running   40
		skip_migrations
	}`
	var app App
	if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	want := App{
		DatabaseURL: "{env.DATABASE_URL}", Schema: "platform", BaseDomain: "example.com",
		Reserved:    []string{"admin", "www", "api"},
		Docker:      &DockerConfig{Host: "unix:///var/run/docker.sock", PublishIP: "127.0.0.2", Network: "tenants"},
		IdleTimeout: caddy.Duration(15 * time.Minute), StartTimeout: caddy.Duration(90 * time.Second),
		MaxRunning: 40, SkipMigrations: true,
	}
	got, _ := json.Marshal(app)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("got  %s\nwant %s", got, exp)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	cases := map[string]string{
		`tenants extra`:                                  "wrong argument count",
		"tenants {\nbogus 1\n}":                          `unrecognized tenants option "bogus"`,
		"tenants {\ndatabase_url\n}":                     "database_url: expected one argument",
		"tenants {\ndatabase_url a b\n}":                 "database_url: expected one argument, got more",
		"tenants {\nreserved\n}":                         "reserved: expected at least one subdomain",
		"tenants {\nidle_timeout soon\n}":                "idle_timeout:",
		"tenants {\nidle_timeout -5m\n}":                 "idle_timeout: must not be negative",
		"tenants {\nstart_timeout -1s\n}":                "start_timeout: must not be negative",
		"tenants {\nmax_running many\n}":                 `max_running: "many" is not a non-negative integer`,
		"tenants {\nmax_running -1\n}":                   `max_running: "-1" is not a non-negative integer`,
		"tenants {\nskip_migrations yes\n}":              "wrong argument count",
		"tenants {\ndocker {\nhots unix:///x\n}\n}":      `unrecognized docker option "hots"`,
		"tenants {\ndocker {\npublish_ip\n}\n}":          "publish_ip: expected one argument",
		"tenants {\n docker extra {\n network n\n }\n }": "wrong argument count",
	}
	for input, want := range cases {
		var app App
		err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to contain %q", input, err, want)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Setenv("TENANTS_TEST_EMPTY", "")
	good := func() App {
		return App{DatabaseURL: "postgres://localhost/db", BaseDomain: "example.com", Reserved: []string{"www"}}
	}
	cases := map[string]struct {
		mutate func(*App)
		want   string
	}{
		"missing database_url": {func(a *App) { a.DatabaseURL = "" }, "database_url: required"},
		"empty env":            {func(a *App) { a.DatabaseURL = "{env.TENANTS_TEST_EMPTY}" }, "database_url:"},
		"bad schema":           {func(a *App) { a.Schema = "Bad-Schema" }, "schema: invalid schema name"},
		"base_domain port":     {func(a *App) { a.BaseDomain = "example.com:443" }, "base_domain:"},
		"base_domain junk":     {func(a *App) { a.BaseDomain = "exa mple.com" }, "base_domain:"},
		"base_domain ip":       {func(a *App) { a.BaseDomain = "10.0.0.1" }, "base_domain:"},
		"reserved not label":   {func(a *App) { a.Reserved = []string{"ok", "not_ok"} }, `reserved: "not_ok" is not a DNS label`},
		"reserved uppercase":   {func(a *App) { a.Reserved = []string{"WWW"} }, `reserved: "WWW"`},
		"negative idle":        {func(a *App) { a.IdleTimeout = -1 }, "idle_timeout: must not be negative"},
		"negative start":       {func(a *App) { a.StartTimeout = -1 }, "start_timeout: must not be negative"},
		"negative max":         {func(a *App) { a.MaxRunning = -2 }, "max_running: must not be negative"},
		"docker host scheme":   {func(a *App) { a.Docker = &DockerConfig{Host: "/var/run/docker.sock"} }, "docker host: "},
		"docker publish_ip":    {func(a *App) { a.Docker = &DockerConfig{PublishIP: "localhost"} }, "docker publish_ip:"},
		"docker network":       {func(a *App) { a.Docker = &DockerConfig{Network: "a b"} }, "docker network:"},
	}
	for name, c := range cases {
		app := good()
		c.mutate(&app)
		err := app.expand()
		if err == nil {
			err = app.validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, c.want)
		}
	}
	app := good()
	if err := app.expand(); err != nil {
		t.Fatal(err)
	}
	if err := app.validate(); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	if app.Schema != "tenants" || app.Docker.PublishIP != "127.0.0.1" || app.IdleTimeout != caddy.Duration(15*time.Minute) || app.StartTimeout != caddy.Duration(time.Minute) {
		t.Fatalf("defaults not applied: %+v %+v", app, app.Docker)
	}
}

func TestExpandPlaceholders(t *testing.T) {
	t.Setenv("TENANTS_TEST_DSN", "postgres://u@db/x")
	app := App{DatabaseURL: "{env.TENANTS_TEST_DSN}", BaseDomain: "Example.COM."}
	if err := app.expand(); err != nil {
		t.Fatal(err)
	}
	if app.dsn != "postgres://u@db/x" || app.BaseDomain != "example.com" {
		t.Fatalf("expanded dsn %q base_domain %q", app.dsn, app.BaseDomain)
	}
}
