package multitenant

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("tenants", parseGlobalOption)
}

// parseGlobalOption sets up the tenants app from the `tenants` global
// option; its syntax is documented on App.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("the tenants global option may appear only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{
		Name:  "tenants",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	tenants {
//		database_url  <url>
//		schema        <name>
//		base_domain   <domain>
//		reserved      <label...>
//		docker {
//			host        <address>
//			publish_ip  <ip>
//			network     <name>
//			subnet_pool <cidr> [<prefix length>]
//		}
//		limits {
//			memory <size>
//			cpus   <number>
//			pids   <n>
//		}
//		egress             on|off
//		allow_capabilities <capability...>
//		idle_timeout  <duration>
//		start_timeout <duration>
//		max_running   <n>
//		skip_migrations
//		stripe {
//			secret_key     <key>
//			webhook_secret <secret>
//			api_url        <url>
//			grace_period   <duration>
//			check_interval <duration>
//			prices {
//				<plan-slug> <price-id>
//			}
//		}
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "database_url":
			if err := oneArg(d, &a.DatabaseURL); err != nil {
				return err
			}
		case "schema":
			if err := oneArg(d, &a.Schema); err != nil {
				return err
			}
		case "base_domain":
			if err := oneArg(d, &a.BaseDomain); err != nil {
				return err
			}
		case "reserved":
			names := d.RemainingArgs()
			if len(names) == 0 {
				return d.Err("reserved: expected at least one subdomain")
			}
			a.Reserved = append(a.Reserved, names...)
		case "docker":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Docker == nil {
				a.Docker = new(DockerConfig)
			}
			if err := a.Docker.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "idle_timeout":
			if err := durationArg(d, &a.IdleTimeout); err != nil {
				return err
			}
		case "start_timeout":
			if err := durationArg(d, &a.StartTimeout); err != nil {
				return err
			}
		case "max_running":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return d.Errf("max_running: %q is not a non-negative integer", s)
			}
			a.MaxRunning = n
		case "limits":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Limits == nil {
				a.Limits = new(LimitsConfig)
			}
			if err := a.Limits.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "egress":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			on, err := onOff(s)
			if err != nil {
				return d.Errf("egress: %v", err)
			}
			a.Egress = &on
		case "allow_capabilities":
			caps := d.RemainingArgs()
			if len(caps) == 0 {
				return d.Err("allow_capabilities: expected at least one capability")
			}
			a.AllowCapabilities = append(a.AllowCapabilities, caps...)
		case "stripe":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Stripe == nil {
				a.Stripe = new(StripeConfig)
			}
			if err := a.Stripe.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "skip_migrations":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.SkipMigrations = true
		default:
			return d.Errf("unrecognized tenants option %q", d.Val())
		}
	}
	return nil
}

func (c *DockerConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "host":
			if err := oneArg(d, &c.Host); err != nil {
				return err
			}
		case "publish_ip":
			if err := oneArg(d, &c.PublishIP); err != nil {
				return err
			}
		case "network":
			if err := oneArg(d, &c.Network); err != nil {
				return err
			}
		case "subnet_pool":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Err("subnet_pool: expected a network and optionally a prefix length, e.g. 172.16.0.0/16 26")
			}
			c.SubnetPool = args[0]
			if len(args) == 2 {
				n, err := strconv.Atoi(strings.TrimPrefix(args[1], "/"))
				if err != nil {
					return d.Errf("subnet_pool: %q is not a prefix length such as 26", args[1])
				}
				c.SubnetSize = n
			}
		default:
			return d.Errf("unrecognized docker option %q", d.Val())
		}
	}
	return nil
}

func (l *LimitsConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var s string
		if err := oneArg(d, &s); err != nil {
			return err
		}
		switch name {
		case "memory":
			n, err := parseSize(s)
			if err != nil {
				return d.Errf("limits memory: %v", err)
			}
			l.MemoryBytes = n
		case "cpus":
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f <= 0 || f > 1e6 {
				return d.Errf("limits cpus: %q is not a positive number of CPUs such as 1.5", s)
			}
			l.NanoCPUs = int64(math.Round(f * 1e9))
		case "pids":
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1 {
				return d.Errf("limits pids: %q is not a positive integer", s)
			}
			l.PidsLimit = n
		default:
			return d.Errf("unrecognized limits option %q", name)
		}
	}
	return nil
}

// onOff reads a switch written on or off (or true or false).
func onOff(s string) (bool, error) {
	switch s {
	case "on", "true":
		return true, nil
	case "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q: expected on or off", s)
}

// oneArg reads exactly one argument of the current option into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: expected one argument", name)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s: expected one argument, got more", name)
	}
	return nil
}

// durationArg reads one duration argument, refusing negative ones.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	if dur < 0 {
		return d.Errf("%s: must not be negative, got %s", name, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*App)(nil)
