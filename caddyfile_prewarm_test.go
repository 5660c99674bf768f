package multitenant

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfilePrewarm(t *testing.T) {
	cases := map[string]PrewarmConfig{
		"tenants {\nprewarm {\nlead 90s\nweeks 3\nthreshold 0.75\n}\n}": {Lead: caddy.Duration(90 * time.Second), Weeks: 3, Threshold: 0.75},
		"tenants {\nprewarm off\n}":                                     {Off: true},
		"tenants {\nprewarm on\n}":                                      {},
		"tenants {\nprewarm\n}":                                         {},
		"tenants {\nprewarm on {\nweeks 2\n}\n}":                        {Weeks: 2},
	}
	for input, want := range cases {
		var app App
		if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			t.Errorf("%q: %v", input, err)
			continue
		}
		if app.Prewarm == nil || *app.Prewarm != want {
			t.Errorf("%q: got %+v, want %+v", input, app.Prewarm, want)
		}
	}
}

func TestUnmarshalCaddyfilePrewarmErrors(t *testing.T) {
	wantUnmarshalErrors(t, map[string]string{
		"tenants {\nprewarm maybe\n}":               `prewarm: "maybe": expected on or off`,
		"tenants {\nprewarm off extra\n}":           "wrong argument count",
		"tenants {\nprewarm off {\nweeks 2\n}\n}":   "prewarm: a block of settings does not go with off",
		"tenants {\nprewarm {\nlead soon\n}\n}":     `prewarm lead: "soon" is not a duration above 0s and at most 30m0s`,
		"tenants {\nprewarm {\nlead 2h\n}\n}":       `prewarm lead: "2h" is not a duration`,
		"tenants {\nprewarm {\nlead 0s\n}\n}":       `prewarm lead: "0s" is not a duration above 0s`,
		"tenants {\nprewarm {\nweeks 0\n}\n}":       `prewarm weeks: "0" is not a number of weeks from 1 to 4`,
		"tenants {\nprewarm {\nweeks 6\n}\n}":       `prewarm weeks: "6" is not a number of weeks from 1 to 4`,
		"tenants {\nprewarm {\nthreshold 0\n}\n}":   `prewarm threshold: "0" is not a fraction above 0 and at most 1`,
		"tenants {\nprewarm {\nthreshold 1.5\n}\n}": `prewarm threshold: "1.5" is not a fraction`,
		"tenants {\nprewarm {\nthreshold NaN\n}\n}": `prewarm threshold: "NaN" is not a fraction`,
		"tenants {\nprewarm {\nweeks\n}\n}":         "weeks: expected one argument",
		"tenants {\nprewarm {\nhorizon 2\n}\n}":     `unrecognized prewarm option "horizon"`,
	})
}

func TestValidatePrewarm(t *testing.T) {
	good := func() App { return App{DatabaseURL: "postgres://localhost/db"} }
	app := good()
	if err := expandAndValidate(&app); err != nil {
		t.Fatal(err)
	}
	if want := (PrewarmConfig{Lead: caddy.Duration(2 * time.Minute), Weeks: 4, Threshold: 0.5}); *app.Prewarm != want {
		t.Fatalf("default prewarm %+v, want %+v", *app.Prewarm, want)
	}
	for name, c := range map[string]struct {
		cfg  PrewarmConfig
		want string
	}{
		"lead":      {PrewarmConfig{Lead: caddy.Duration(time.Hour)}, "prewarm lead: 1h0m0s, want above 0s and at most 30m0s"},
		"weeks":     {PrewarmConfig{Weeks: 5}, "prewarm weeks: 5, want 1 to 4"},
		"threshold": {PrewarmConfig{Threshold: 2}, "prewarm threshold: 2, want above 0 and at most 1"},
	} {
		app := good()
		cfg := c.cfg
		app.Prewarm = &cfg
		err := expandAndValidate(&app)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, c.want)
		}
	}
}
