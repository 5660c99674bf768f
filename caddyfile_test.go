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
			host        unix:///var/run/docker.sock
			publish_ip  127.0.0.2
			network     tenants
			subnet_pool 10.200.0.0/16 /27
		}
		limits {
			memory 256MiB
			cpus   1.5
			pids   300
		}
		egress off
		allow_capabilities SYS_PTRACE NET_ADMIN
		allow_capabilities CAP_SYS_NICE
		idle_timeout  15m
		start_timeout 1m30s
		scale_up_window   3s
		scale_down_window 2m
		max_running   40
		skip_migrations
		metrics       per_site
	}`
	var app App
	if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	egress := false
	want := App{
		DatabaseURL: "{env.DATABASE_URL}", Schema: "platform", BaseDomain: "example.com",
		Reserved: []string{"admin", "www", "api"},
		Docker: &DockerConfig{Host: "unix:///var/run/docker.sock", PublishIP: "127.0.0.2", Network: "tenants",
			SubnetPool: "10.200.0.0/16", SubnetSize: 27},
		Limits:            &LimitsConfig{MemoryBytes: 256 << 20, NanoCPUs: 1_500_000_000, PidsLimit: 300},
		Egress:            &egress,
		AllowCapabilities: []string{"SYS_PTRACE", "NET_ADMIN", "CAP_SYS_NICE"},
		IdleTimeout:       caddy.Duration(15 * time.Minute), StartTimeout: caddy.Duration(90 * time.Second),
		ScaleUpWindow: caddy.Duration(3 * time.Second), ScaleDownWindow: caddy.Duration(2 * time.Minute),
		MaxRunning: 40, SkipMigrations: true, Metrics: MetricsPerSite,
	}
	got, _ := json.Marshal(app)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("got  %s\nwant %s", got, exp)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	cases := map[string]string{
		`tenants extra`:                                       "wrong argument count",
		"tenants {\nbogus 1\n}":                               `unrecognized tenants option "bogus"`,
		"tenants {\ndatabase_url\n}":                          "database_url: expected one argument",
		"tenants {\ndatabase_url a b\n}":                      "database_url: expected one argument, got more",
		"tenants {\nreserved\n}":                              "reserved: expected at least one subdomain",
		"tenants {\nidle_timeout soon\n}":                     "idle_timeout:",
		"tenants {\nidle_timeout -5m\n}":                      "idle_timeout: must not be negative",
		"tenants {\nstart_timeout -1s\n}":                     "start_timeout: must not be negative",
		"tenants {\nmax_running many\n}":                      `max_running: "many" is not a non-negative integer`,
		"tenants {\nmax_running -1\n}":                        `max_running: "-1" is not a non-negative integer`,
		"tenants {\nskip_migrations yes\n}":                   "wrong argument count",
		"tenants {\nmetrics all\n}":                           `metrics: "all" is neither platform nor per_site`,
		"tenants {\ndocker {\nhots unix:///x\n}\n}":           `unrecognized docker option "hots"`,
		"tenants {\ndocker {\npublish_ip\n}\n}":               "publish_ip: expected one argument",
		"tenants {\n docker extra {\n network n\n }\n }":      "wrong argument count",
		"tenants {\ndocker {\nsubnet_pool\n}\n}":              "subnet_pool: expected a network",
		"tenants {\ndocker {\nsubnet_pool 10.0.0.0/8 x\n}\n}": `subnet_pool: "x" is not a prefix length`,
		"tenants {\nlimits {\nmemory lots\n}\n}":              `limits memory: "lots" is not a size`,
		"tenants {\nlimits {\ncpus 0\n}\n}":                   `limits cpus: "0" is not a positive number`,
		"tenants {\nlimits {\npids -3\n}\n}":                  `limits pids: "-3" is not a positive integer`,
		"tenants {\nlimits {\nswap 1GiB\n}\n}":                `unrecognized limits option "swap"`,
		"tenants {\nlimits {\nmemory\n}\n}":                   "memory: expected one argument",
		"tenants {\negress maybe\n}":                          `egress: "maybe": expected on or off`,
		"tenants {\nallow_capabilities\n}":                    "allow_capabilities: expected at least one capability",
		"tenants {\nscale_up_window\n}":                       "scale_up_window: expected one argument",
		"tenants {\nscale_down_window -1m\n}":                 "scale_down_window: must not be negative",
	}
	wantUnmarshalErrors(t, cases)
}

// wantUnmarshalErrors checks that each Caddyfile input fails to unmarshal
// with an error containing its text.
func wantUnmarshalErrors(t *testing.T, cases map[string]string) {
	t.Helper()
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
		"scale windows":        {func(a *App) { a.ScaleUpWindow = caddy.Duration(2 * time.Minute) }, "scale_down_window (1m0s) must not be shorter than scale_up_window (2m0s)"},
		"negative window":      {func(a *App) { a.ScaleUpWindow = -1 }, "scale_up_window and scale_down_window must not be negative"},
		"docker host scheme":   {func(a *App) { a.Docker = &DockerConfig{Host: "/var/run/docker.sock"} }, "docker host: "},
		"docker publish_ip":    {func(a *App) { a.Docker = &DockerConfig{PublishIP: "localhost"} }, "docker publish_ip:"},
		"docker network":       {func(a *App) { a.Docker = &DockerConfig{Network: "a b"} }, "docker network:"},
		"subnet pool":          {func(a *App) { a.Docker = &DockerConfig{SubnetPool: "10.0.0.1/16"} }, "docker subnet_pool:"},
		"subnet pool v6":       {func(a *App) { a.Docker = &DockerConfig{SubnetPool: "fd00::/64"} }, "docker subnet_pool:"},
		"subnet size":          {func(a *App) { a.Docker = &DockerConfig{SubnetPool: "10.9.0.0/24", SubnetSize: 16} }, "subnet size /16 must be between /24"},
		"limits memory":        {func(a *App) { a.Limits = &LimitsConfig{MemoryBytes: 1 << 20} }, "limits: memory_bytes: below Docker's minimum"},
		"limits pids":          {func(a *App) { a.Limits = &LimitsConfig{PidsLimit: 40000} }, "limits: pids_limit: must be at most 32768"},
		"limits cpus":          {func(a *App) { a.Limits = &LimitsConfig{NanoCPUs: 5} }, "limits: nano_cpus: below Docker's minimum"},
		"capability":           {func(a *App) { a.AllowCapabilities = []string{"SYS_ADMN"} }, `allow_capabilities: "SYS_ADMN" is not a Linux capability`},
	}
	for name, c := range cases {
		app := good()
		c.mutate(&app)
		err := expandAndValidate(&app)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, c.want)
		}
	}
	app := good()
	if err := expandAndValidate(&app); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	if app.Schema != "tenants" || app.Docker.PublishIP != "127.0.0.1" || app.IdleTimeout != caddy.Duration(15*time.Minute) || app.StartTimeout != caddy.Duration(time.Minute) ||
		app.ScaleUpWindow != caddy.Duration(6*time.Second) || app.ScaleDownWindow != caddy.Duration(time.Minute) {
		t.Fatalf("defaults not applied: %+v %+v", app, app.Docker)
	}
	if *app.Limits != (LimitsConfig{MemoryBytes: 512 << 20, NanoCPUs: 1e9, PidsLimit: 512}) || !*app.Egress {
		t.Fatalf("default limits and egress: %+v %v", app.Limits, *app.Egress)
	}
}

// pause_after: a duration, 0 or off (an explicit 0: pausing disabled,
// never the default), absent the default; max_paused_memory a size.
func TestUnmarshalCaddyfilePause(t *testing.T) {
	for input, want := range map[string]struct {
		pauseAfter *time.Duration
		maxPaused  int64
	}{
		"tenants {\npause_after 30s\nmax_paused_memory 512MiB\n}": {ptr(30 * time.Second), 512 << 20},
		"tenants {\npause_after off\n}":                           {ptr(time.Duration(0)), 0},
		"tenants {\npause_after 0\n}":                             {ptr(time.Duration(0)), 0},
		"tenants {\nmax_paused_memory 1GB\n}":                     {nil, 1_000_000_000},
	} {
		var app App
		if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			t.Fatalf("%s: %v", input, err)
		}
		switch {
		case want.pauseAfter == nil && app.PauseAfter != nil:
			t.Errorf("%s: pause_after = %s, want absent", input, time.Duration(*app.PauseAfter))
		case want.pauseAfter != nil && (app.PauseAfter == nil || time.Duration(*app.PauseAfter) != *want.pauseAfter):
			t.Errorf("%s: pause_after = %v, want %s", input, app.PauseAfter, *want.pauseAfter)
		}
		if app.MaxPausedMemory != want.maxPaused {
			t.Errorf("%s: max_paused_memory = %d, want %d", input, app.MaxPausedMemory, want.maxPaused)
		}
		app.DatabaseURL = "postgres://localhost/db"
		if err := expandAndValidate(&app); err != nil {
			t.Fatalf("%s: %v", input, err)
		}
		wantAfter := DefaultPauseAfter
		if want.pauseAfter != nil {
			wantAfter = *want.pauseAfter
		}
		if got := time.Duration(*app.PauseAfter); got != wantAfter {
			t.Errorf("%s: pause_after after defaults = %s, want %s", input, got, wantAfter)
		}
	}

	// The JSON keeps an explicit 0 apart from an absent value.
	var off App
	if err := json.Unmarshal([]byte(`{"pause_after": 0}`), &off); err != nil || off.PauseAfter == nil || *off.PauseAfter != 0 {
		t.Fatalf(`{"pause_after": 0} = %v, %v; want an explicit 0`, off.PauseAfter, err)
	}
	if b, _ := json.Marshal(off); !strings.Contains(string(b), `"pause_after":0`) {
		t.Errorf("an explicit 0 is lost in %s", b)
	}
	if b, _ := json.Marshal(App{}); strings.Contains(string(b), "pause_after") {
		t.Errorf("an absent pause_after shows in %s", b)
	}

	wantUnmarshalErrors(t, map[string]string{
		"tenants {\npause_after soon\n}":         "pause_after:",
		"tenants {\npause_after -1m\n}":          "pause_after: must not be negative",
		"tenants {\npause_after\n}":              "pause_after: expected one argument",
		"tenants {\npause_after 1m 2m\n}":        "pause_after: expected one argument, got more",
		"tenants {\nmax_paused_memory lots\n}":   `max_paused_memory: "lots" is not a size`,
		"tenants {\nmax_paused_memory 0\n}":      `max_paused_memory: "0" is not a size`,
		"tenants {\nmax_paused_memory\n}":        "max_paused_memory: expected one argument",
		"tenants {\nmax_paused_memory 1GiB 2\n}": "max_paused_memory: expected one argument, got more",
	})

	neg := caddy.Duration(-time.Second)
	for name, app := range map[string]App{
		"pause_after: must not be negative":       {DatabaseURL: "postgres://localhost/db", PauseAfter: &neg},
		"max_paused_memory: must not be negative": {DatabaseURL: "postgres://localhost/db", MaxPausedMemory: -1},
	} {
		if err := expandAndValidate(&app); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("err = %v, want %q", err, name)
		}
	}
}

func ptr[T any](v T) *T { return &v }

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

func TestUnmarshalCaddyfileStripe(t *testing.T) {
	input := `tenants {
		database_url {env.DATABASE_URL}
		stripe {
			secret_key     {env.STRIPE_SECRET_KEY}
			webhook_secret {env.STRIPE_WEBHOOK_SECRET}
			api_url        http://127.0.0.1:12111
			grace_period   48h
			check_interval 30s
			prices {
				basic price_basic
				pro   price_pro
			}
		}
	}`
	var app App
	if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	want := &StripeConfig{SecretKey: "{env.STRIPE_SECRET_KEY}", WebhookSecret: "{env.STRIPE_WEBHOOK_SECRET}",
		APIURL: "http://127.0.0.1:12111", GracePeriod: caddy.Duration(48 * time.Hour), CheckInterval: caddy.Duration(30 * time.Second),
		Prices: map[string]string{"basic": "price_basic", "pro": "price_pro"}}
	got, _ := json.Marshal(app.Stripe)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("got  %s\nwant %s", got, exp)
	}

	wantUnmarshalErrors(t, map[string]string{
		"tenants {\nstripe extra {\n}\n}":                            "wrong argument count",
		"tenants {\nstripe {\nsecret {env.X}\n}\n}":                  `unrecognized stripe option "secret"`,
		"tenants {\nstripe {\nsecret_key\n}\n}":                      "secret_key: expected one argument",
		"tenants {\nstripe {\nwebhook_secret a b\n}\n}":              "webhook_secret: expected one argument, got more",
		"tenants {\nstripe {\ngrace_period soon\n}\n}":               "grace_period:",
		"tenants {\nstripe {\ngrace_period -1h\n}\n}":                "grace_period: must not be negative",
		"tenants {\nstripe {\ncheck_interval -1s\n}\n}":              "check_interval: must not be negative",
		"tenants {\nstripe {\nprices {\nbasic\n}\n}\n}":              "prices: basic: expected one price id",
		"tenants {\nstripe {\nprices {\nbasic a b\n}\n}\n}":          "prices: basic: expected one price id",
		"tenants {\nstripe {\nprices {\nb p1\nb p2\n}\n}\n}":         "prices: plan b listed twice",
		"tenants {\nstripe {\nprices extra {\nbasic p1\n}\n}\n}":     "wrong argument count",
		"tenants {\nstripe {\napi_url http://a http://b\n}\n}":       "api_url: expected one argument, got more",
		"tenants {\nstripe {\nsecret_key sk_1\nbogus\n}\n}":          `unrecognized stripe option "bogus"`,
		"tenants {\nstripe {\nprices {\nbasic price_1\n}\nx y\n}\n}": `unrecognized stripe option "x"`,
	})
}

// Bad stripe settings are load errors naming the field.
func TestValidateStripe(t *testing.T) {
	t.Setenv("TENANTS_TEST_EMPTY", "")
	t.Setenv("TENANTS_TEST_STRIPE_KEY", "sk_test_from_env")
	good := func() App {
		return App{DatabaseURL: "postgres://localhost/db", Stripe: &StripeConfig{
			SecretKey: "{env.TENANTS_TEST_STRIPE_KEY}", WebhookSecret: "whsec_1"}}
	}
	cases := map[string]struct {
		mutate func(*StripeConfig)
		want   string
	}{
		"no secret_key":        {func(s *StripeConfig) { s.SecretKey = "" }, "stripe secret_key: required"},
		"empty env secret_key": {func(s *StripeConfig) { s.SecretKey = "{env.TENANTS_TEST_EMPTY}" }, "stripe secret_key: \"{env.TENANTS_TEST_EMPTY}\" expands to nothing"},
		"publishable key":      {func(s *StripeConfig) { s.SecretKey = "pk_live_1" }, "stripe secret_key: not a Stripe secret key"},
		"no webhook_secret":    {func(s *StripeConfig) { s.WebhookSecret = "" }, "stripe webhook_secret: required"},
		"bad webhook_secret":   {func(s *StripeConfig) { s.WebhookSecret = "secret" }, "stripe webhook_secret: not a webhook signing secret"},
		"bad api_url":          {func(s *StripeConfig) { s.APIURL = "api.stripe.com" }, "stripe api_url:"},
		"api_url with path":    {func(s *StripeConfig) { s.APIURL = "https://api.stripe.com/v1" }, "stripe api_url:"},
		"negative grace":       {func(s *StripeConfig) { s.GracePeriod = -1 }, "stripe grace_period: must not be negative"},
		"negative interval":    {func(s *StripeConfig) { s.CheckInterval = -1 }, "stripe check_interval: must not be negative"},
		"bad slug":             {func(s *StripeConfig) { s.Prices = map[string]string{"Pro Plan": "price_1"} }, `stripe prices: "Pro Plan" is not a plan slug`},
		"bad price":            {func(s *StripeConfig) { s.Prices = map[string]string{"pro": "price 1"} }, `stripe prices: "price 1" of plan pro`},
		"empty env price":      {func(s *StripeConfig) { s.Prices = map[string]string{"pro": "{env.TENANTS_TEST_EMPTY}"} }, `stripe prices: pro: "{env.TENANTS_TEST_EMPTY}" expands to nothing`},
	}
	for name, c := range cases {
		app := good()
		c.mutate(app.Stripe)
		err := expandAndValidate(&app)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, c.want)
		}
	}
	app := good()
	if err := expandAndValidate(&app); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	t.Setenv("TENANTS_TEST_STRIPE_PRICE", "price_from_env")
	app.Stripe.Prices = map[string]string{"pro": "{env.TENANTS_TEST_STRIPE_PRICE}"}
	cfg, err := app.Stripe.billingConfig()
	if err != nil || cfg.SecretKey != "sk_test_from_env" || cfg.Prices["pro"] != "price_from_env" {
		t.Fatalf("expanded secret_key %q prices %v, %v", cfg.SecretKey, cfg.Prices, err)
	}
	// The JSON config keeps the placeholder, not the key.
	if j, _ := json.Marshal(app); strings.Contains(string(j), "sk_test_from_env") {
		t.Fatalf("the secret key leaked into the JSON config: %s", j)
	}
}

// expandAndValidate is what Provision checks of the app's settings.
func expandAndValidate(a *App) error {
	if err := a.expand(); err != nil {
		return err
	}
	return a.validate()
}
